#!/usr/bin/env python3
"""Static checks of the rendered deploy/k8s manifests against the kvs-server binary, and the
exact environment of each pod, for tests/deploy/k8s_manifests.sh.

Usage: k8s_check.py RENDERED_JSON HELP_TEXT OUT_DIR

RENDERED_JSON: `kubectl kustomize deploy/k8s` converted to JSON (a stream of objects, or a
List). HELP_TEXT: the output of `kvs-server --help`. Writes to OUT_DIR:
  pods                one line per pod: "<pod name> <host of its SOCKET_ADDRESS>"
  <pod>.env           the pod's container environment, NAME=VALUE entries separated by NUL,
                      in Kubernetes's order and with its $(VAR) expansion
  facts.sh            shell assignments (port, probe paths, grace, user ids, ...)
Exits 1 with every problem listed when a check fails. No dependency beyond python3.
"""
import base64
import json
import re
import shlex
import sys

# The variables kvs-server reads besides its KVS_<TUNABLE> ones (SPEC §1, `--help`).
CORE_VARS = {"SOCKET_ADDRESS", "VIEW", "SHARD_COUNT"}

problems = []


def fail(message):
    problems.append(message)


def load_objects(path):
    text = open(path, encoding="utf-8").read()
    decoder = json.JSONDecoder()
    objects, pos = [], 0
    while True:
        while pos < len(text) and text[pos].isspace():
            pos += 1
        if pos >= len(text):
            break
        obj, pos = decoder.raw_decode(text, pos)
        if obj.get("kind") == "List":
            objects.extend(obj.get("items", []))
        else:
            objects.append(obj)
    return objects


def parse_help(path):
    """{env name: default} of every tunable `kvs-server --help` lists."""
    tunables = {}
    pattern = re.compile(r"^\s+(kvs\.[a-z0-9_.]+) \(env (KVS_[A-Z0-9_]+), default ([^)]*)\)")
    for line in open(path, encoding="utf-8"):
        match = pattern.match(line)
        if match:
            tunables[match.group(2)] = match.group(3)
    return tunables


def expand(value, mapping):
    """Kubernetes's $(VAR) expansion (k8s.io/kubernetes third_party/forked/golang/expansion):
    $(NAME) of a variable defined earlier becomes its value, an unknown $(NAME) stays as it is,
    $$ becomes $."""
    out, i = [], 0
    while i < len(value):
        if value[i] == "$" and i + 1 < len(value):
            nxt = value[i + 1]
            if nxt == "$":
                out.append("$")
                i += 2
                continue
            if nxt == "(":
                close = value.find(")", i + 2)
                if close != -1:
                    name = value[i + 2:close]
                    out.append(mapping.get(name, "$(" + name + ")"))
                    i = close + 1
                    continue
                out.append("$(")
                i += 2
                continue
            out.append("$" + nxt)
            i += 2
            continue
        out.append(value[i])
        i += 1
    return "".join(out)


def split_address(address):
    host, sep, port = address.rpartition(":")
    if not sep or not host or not port.isdigit():
        return None, None
    return host, int(port)


def labels_match(selector, labels):
    if not selector:
        return False
    for key, value in (selector.get("matchLabels") or {}).items():
        if labels.get(key) != value:
            return False
    for expr in selector.get("matchExpressions") or []:
        key, op, values = expr["key"], expr["operator"], expr.get("values", [])
        if op == "In" and labels.get(key) not in values:
            return False
        if op == "NotIn" and labels.get(key) in values:
            return False
        if op == "Exists" and key not in labels:
            return False
        if op == "DoesNotExist" and key in labels:
            return False
    return True


def main():
    rendered, help_path, out_dir = sys.argv[1:4]
    objects = load_objects(rendered)
    tunables = parse_help(help_path)
    if len(tunables) < 10:
        print(f"k8s_check: could not read the tunables from kvs-server --help ({help_path})")
        return 1
    by_kind = {}
    for obj in objects:
        by_kind.setdefault(obj.get("kind"), []).append(obj)
    print("rendered: " + ", ".join(
        f"{kind}/{obj['metadata']['name']}" for kind, objs in sorted(by_kind.items()) for obj in objs))

    sets = by_kind.get("StatefulSet", [])
    if len(sets) != 1:
        print(f"k8s_check: expected exactly one StatefulSet, found {len(sets)}")
        return 1
    sts = sets[0]
    sts_name = sts["metadata"]["name"]
    namespace = sts["metadata"].get("namespace", "default")
    spec = sts["spec"]
    pod_spec = spec["template"]["spec"]
    pod_labels = spec["template"]["metadata"].get("labels", {})
    replicas = spec.get("replicas", 1)
    service_name = spec.get("serviceName", "")

    # --- StatefulSet shape.
    if spec.get("podManagementPolicy") != "Parallel":
        fail("StatefulSet: podManagementPolicy must be Parallel (a node is ready only once it "
             "reaches its peers; OrderedReady would wait for kvs-0 forever)")
    if not labels_match(spec.get("selector"), pod_labels):
        fail("StatefulSet: selector does not match the pod template's labels")
    if pod_spec.get("enableServiceLinks") is not False:
        fail("pod: enableServiceLinks must be false (the Service 'kvs' would inject KVS_SERVICE_HOST, "
             "KVS_PORT... which kvs-server reads as unknown tunables)")
    containers = pod_spec.get("containers", [])
    if len(containers) != 1:
        fail(f"pod: expected one container, found {len(containers)}")
    container = containers[0]
    for key in ("command",):
        if container.get(key):
            fail(f"container: {key} overrides the image's ENTRYPOINT (/usr/local/bin/kvs-server)")
    args = container.get("args", [])
    if container.get("envFrom"):
        fail("container: envFrom is not supported by this check: list variables under env")

    ports = {p.get("name"): p["containerPort"] for p in container.get("ports", [])}
    container_ports = set(ports.values())

    def resolve_port(port, what):
        if isinstance(port, int):
            if port not in container_ports:
                fail(f"{what}: port {port} is not a containerPort {sorted(container_ports)}")
            return port
        if isinstance(port, str) and port.isdigit():
            return resolve_port(int(port), what)
        if port not in ports:
            fail(f"{what}: named port {port!r} is not a containerPort name {sorted(k for k in ports if k)}")
            return None
        return ports[port]

    # --- Secrets and ConfigMaps the env refers to.
    secrets = {s["metadata"]["name"]: s for s in by_kind.get("Secret", [])}
    config_maps = {c["metadata"]["name"]: c for c in by_kind.get("ConfigMap", [])}

    def secret_value(ref, what):
        secret = secrets.get(ref.get("name"))
        if secret is None:
            if not ref.get("optional"):
                fail(f"{what}: Secret {ref.get('name')!r} is not among the rendered manifests")
            return None
        if ref["key"] in secret.get("stringData", {}):
            return secret["stringData"][ref["key"]]
        if ref["key"] not in secret.get("data", {}):
            fail(f"{what}: Secret {ref.get('name')!r} has no key {ref['key']!r}")
            return None
        return base64.b64decode(secret["data"][ref["key"]]).decode("utf-8")

    def config_map_value(ref, what):
        cm = config_maps.get(ref.get("name"))
        if cm is None or ref["key"] not in cm.get("data", {}):
            fail(f"{what}: ConfigMap {ref.get('name')!r} key {ref['key']!r} not rendered")
            return None
        return cm["data"][ref["key"]]

    # --- Env names: each is one kvs-server reads, or a helper only used in $(...) references.
    env = container.get("env", [])
    names = [e["name"] for e in env]
    referenced = set()
    for e in env:
        referenced.update(re.findall(r"\$\(([^)]*)\)", e.get("value", "")))
    for a in args:
        referenced.update(re.findall(r"\$\(([^)]*)\)", a))
    for e in env:
        name = e["name"]
        if name in CORE_VARS or name in tunables:
            continue
        if name.startswith("KVS_"):
            fail(f"env {name}: kvs-server --help lists no such tunable")
        elif name not in referenced:
            fail(f"env {name}: neither read by kvs-server (SOCKET_ADDRESS, VIEW, SHARD_COUNT, "
                 "KVS_<TUNABLE>) nor used in a $(...) reference")
    if len(set(names)) != len(names):
        fail("env: a variable is listed twice")
    for required in ("SOCKET_ADDRESS", "VIEW", "SHARD_COUNT", "KVS_CLUSTER_ID", "KVS_CLUSTER_SECRET",
                     "KVS_ADMIN_TOKEN"):
        if required not in names:
            fail(f"env: {required} is not set")
    for name in ("KVS_CLUSTER_SECRET", "KVS_ADMIN_TOKEN"):
        for e in env:
            if e["name"] == name and "secretKeyRef" not in (e.get("valueFrom") or {}):
                fail(f"env {name}: must come from a Secret (valueFrom.secretKeyRef)")

    # --- Each pod's environment, as the kubelet computes it.
    pods = [f"{sts_name}-{i}" for i in range(replicas)]
    pod_envs = {}
    for pod in pods:
        values = {}
        ordered = []
        for e in env:
            name = e["name"]
            what = f"env {name} of {pod}"
            if "value" in e or not e.get("valueFrom"):
                value = expand(e.get("value", ""), values)
            else:
                source = e["valueFrom"]
                if "fieldRef" in source:
                    field = source["fieldRef"]["fieldPath"]
                    known = {"metadata.name": pod, "metadata.namespace": namespace,
                             "spec.serviceAccountName": pod_spec.get("serviceAccountName", "default")}
                    if field not in known:
                        fail(f"{what}: fieldRef {field} is not simulated by this check")
                        continue
                    value = known[field]
                elif "secretKeyRef" in source:
                    value = secret_value(source["secretKeyRef"], what)
                elif "configMapKeyRef" in source:
                    value = config_map_value(source["configMapKeyRef"], what)
                else:
                    fail(f"{what}: valueFrom {sorted(source)} is not simulated by this check")
                    continue
                if value is None:
                    continue
            values[name] = value
            ordered.append((name, value))
        pod_envs[pod] = (values, ordered)
        for a in args:
            if not expand(a, values).startswith("--"):
                fail(f"args of {pod}: {a!r} is not a --name=value option")

    # --- Addresses: SOCKET_ADDRESS is <pod>.<serviceName>:<port>, VIEW lists every pod.
    headless = [s for s in by_kind.get("Service", []) if s["metadata"]["name"] == service_name]
    if not headless:
        fail(f"StatefulSet serviceName {service_name!r}: no such Service rendered")
    else:
        svc = headless[0]["spec"]
        if svc.get("clusterIP") != "None":
            fail(f"Service {service_name}: must be headless (clusterIP: None) for per-pod DNS names")
        if svc.get("publishNotReadyAddresses") is not True:
            fail(f"Service {service_name}: publishNotReadyAddresses must be true (peers resolve "
                 "each other before they are ready)")
        if not labels_match({"matchLabels": svc.get("selector", {})}, pod_labels):
            fail(f"Service {service_name}: selector does not match the pods")
    port = None
    hosts = {}
    for pod in pods:
        values = pod_envs[pod][0]
        host, p = split_address(values.get("SOCKET_ADDRESS", ""))
        if host is None:
            fail(f"{pod}: SOCKET_ADDRESS {values.get('SOCKET_ADDRESS')!r} is not host:port")
            continue
        dns = {f"{pod}.{service_name}", f"{pod}.{service_name}.{namespace}",
               f"{pod}.{service_name}.{namespace}.svc", f"{pod}.{service_name}.{namespace}.svc.cluster.local"}
        if host not in dns:
            fail(f"{pod}: SOCKET_ADDRESS host {host!r} is not the pod's stable DNS name "
                 f"{pod}.{service_name}")
        hosts[pod] = host
        if port is None:
            port = p
        elif p != port:
            fail(f"{pod}: SOCKET_ADDRESS port {p} differs from the other pods' {port}")
    if port is not None and port not in container_ports:
        fail(f"containerPort(s) {sorted(container_ports)} do not include SOCKET_ADDRESS's port {port}")
    for pod in pods:
        values = pod_envs[pod][0]
        view = values.get("VIEW", "").split(",")
        expected = [f"{hosts.get(q)}:{port}" for q in pods]
        if sorted(view) != sorted(expected):
            fail(f"{pod}: VIEW {values.get('VIEW')!r} is not every pod's address {','.join(expected)}")
        count = values.get("SHARD_COUNT", "")
        if not count.isdigit() or int(count) < 1:
            fail(f"{pod}: SHARD_COUNT {count!r} is not a positive integer")
        elif 2 * int(count) > replicas:
            fail(f"{pod}: SHARD_COUNT {count} needs at least {2 * int(count)} nodes, replicas is {replicas}")
    shard_count = pod_envs[pods[0]][0].get("SHARD_COUNT", "0")

    # --- Probes: HTTP GET on SOCKET_ADDRESS's port.
    probes = {}
    for kind in ("readinessProbe", "livenessProbe", "startupProbe"):
        probe = container.get(kind)
        if probe is None:
            if kind != "startupProbe":
                fail(f"container: no {kind}")
            continue
        get = probe.get("httpGet")
        if get is None:
            fail(f"{kind}: must be an httpGet probe (the image has no shell for exec probes)")
            continue
        if get.get("scheme", "HTTP") != "HTTP":
            fail(f"{kind}: scheme must be HTTP")
        probe_port = resolve_port(get.get("port"), kind)
        if port is not None and probe_port is not None and probe_port != port:
            fail(f"{kind}: port {probe_port} is not SOCKET_ADDRESS's port {port}")
        probes[kind] = get.get("path", "/")
        for field, low in (("periodSeconds", 1), ("timeoutSeconds", 1), ("failureThreshold", 1)):
            if probe.get(field, low) < low:
                fail(f"{kind}: {field} below {low}")
    if probes.get("readinessProbe") == probes.get("livenessProbe"):
        fail("readinessProbe and livenessProbe use the same path: readiness must be /health/ready "
             "(503 until the node has its data), liveness /health")
    live = container.get("livenessProbe") or {}
    if "startupProbe" not in container and live.get("initialDelaySeconds", 0) < 30:
        fail("livenessProbe: without a startupProbe, give recovery time (initialDelaySeconds >= 30)")

    # --- Client Service, PDB.
    clients = [s for s in by_kind.get("Service", []) if s["metadata"]["name"] != service_name]
    if not clients:
        fail("no client Service (ClusterIP) besides the headless one")
    for svc in clients:
        name, sspec = svc["metadata"]["name"], svc["spec"]
        if sspec.get("clusterIP") == "None":
            fail(f"Service {name}: a client Service must not be headless")
        if not labels_match({"matchLabels": sspec.get("selector", {})}, pod_labels):
            fail(f"Service {name}: selector does not match the pods")
        for sp in sspec.get("ports", []):
            target = resolve_port(sp.get("targetPort", sp.get("port")), f"Service {name} targetPort")
            if port is not None and target != port:
                fail(f"Service {name}: targetPort reaches {target}, not the node port {port}")
    pdbs = by_kind.get("PodDisruptionBudget", [])
    if not pdbs:
        fail("no PodDisruptionBudget")
    for pdb in pdbs:
        pspec = pdb["spec"]
        if not labels_match(pspec.get("selector"), pod_labels):
            fail(f"PodDisruptionBudget {pdb['metadata']['name']}: selector does not match the pods")
        replicas_per_shard = replicas // max(1, int(shard_count) if shard_count.isdigit() else 1)
        mu = pspec.get("maxUnavailable")
        if mu is None or not isinstance(mu, int) or mu < 1 or mu > replicas_per_shard - 2:
            fail(f"PodDisruptionBudget: maxUnavailable {mu!r} must be an integer in 1..{replicas_per_shard - 2} "
                 f"(shards of {replicas_per_shard} replicas keep >= 2)")

    # --- Data directory: the PVC's mount is KVS_STORAGE_DIR.
    storage_dir = pod_envs[pods[0]][0].get("KVS_STORAGE_DIR", "/data")  # image: ENV KVS_STORAGE_DIR=/data
    templates = {t["metadata"]["name"] for t in spec.get("volumeClaimTemplates", [])}
    mounts = {m["mountPath"].rstrip("/"): m["name"] for m in container.get("volumeMounts", [])}
    if storage_dir.rstrip("/") not in mounts:
        fail(f"KVS_STORAGE_DIR {storage_dir} is not a volumeMount of the container")
    elif mounts[storage_dir.rstrip("/")] not in templates:
        fail(f"the volume mounted at {storage_dir} is not a volumeClaimTemplate (one PVC per pod)")

    # --- Stop: the kubelet's SIGKILL comes after the server's drain.
    grace_ms = int(pod_envs[pods[0]][0].get("KVS_HTTP_SHUTDOWN_GRACE_MS",
                                            tunables.get("KVS_HTTP_SHUTDOWN_GRACE_MS", "5000")))
    termination = pod_spec.get("terminationGracePeriodSeconds", 30)
    failure_ms = int(pod_envs[pods[0]][0].get("KVS_CLUSTER_FAILURE_TIMEOUT_MS",
                                              tunables.get("KVS_CLUSTER_FAILURE_TIMEOUT_MS", "3000")))
    if termination * 1000 < grace_ms + 5000:
        fail(f"terminationGracePeriodSeconds {termination} s is not above kvs.http.shutdown_grace_ms "
             f"{grace_ms} ms + 5 s to flush and exit")

    # --- Resources: requests and limits for cpu and memory.
    resources = container.get("resources", {})
    for section in ("requests", "limits"):
        for res in ("cpu", "memory"):
            if res not in resources.get(section, {}):
                fail(f"resources: no {section}.{res}")

    pod_sc = pod_spec.get("securityContext", {})
    ctr_sc = container.get("securityContext", {})
    user = ctr_sc.get("runAsUser", pod_sc.get("runAsUser", ""))
    group = ctr_sc.get("runAsGroup", pod_sc.get("runAsGroup", ""))
    fs_group = pod_sc.get("fsGroup", "")

    if problems:
        print("k8s_check: the rendered manifests do not match kvs-server:")
        for p in problems:
            print("  - " + p)
        return 1

    with open(f"{out_dir}/pods", "w", encoding="utf-8") as f:
        for pod in pods:
            f.write(f"{pod} {hosts[pod]}\n")
    for pod in pods:
        with open(f"{out_dir}/{pod}.env", "wb") as f:
            for name, value in pod_envs[pod][1]:
                f.write(f"{name}={value}".encode("utf-8") + b"\0")
        with open(f"{out_dir}/{pod}.args", "wb") as f:
            for a in args:
                f.write(expand(a, pod_envs[pod][0]).encode("utf-8") + b"\0")
    facts = {
        "K8S_PORT": port, "K8S_SHARD_COUNT": shard_count, "K8S_REPLICAS": replicas,
        "K8S_READY_PATH": probes["readinessProbe"], "K8S_LIVE_PATH": probes["livenessProbe"],
        "K8S_STARTUP_PATH": probes.get("startupProbe", ""), "K8S_STORAGE_DIR": storage_dir,
        "K8S_TERMINATION_S": termination, "K8S_FAILURE_TIMEOUT_MS": failure_ms, "K8S_RUN_AS_USER": user, "K8S_RUN_AS_GROUP": group,
        "K8S_FS_GROUP": fs_group, "K8S_IMAGE": container.get("image", ""),
        "K8S_NO_NEW_PRIVS": "1" if ctr_sc.get("allowPrivilegeEscalation") is False else "",
        "K8S_READ_ONLY_ROOT": "1" if ctr_sc.get("readOnlyRootFilesystem") is True else "",
    }
    with open(f"{out_dir}/facts.sh", "w", encoding="utf-8") as f:
        for key, value in facts.items():
            f.write(f"{key}={shlex.quote(str(value))}\n")
    env_names = ", ".join(names)
    print(f"ok: {replicas} pods of StatefulSet {sts_name} (service {service_name}), port {port}, "
          f"SHARD_COUNT {shard_count}, probes {probes}, env [{env_names}], image {facts['K8S_IMAGE']}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
