#!/usr/bin/env bash
# tests/test_deploy_manifests.sh — the cluster launchers, checked without a
# cluster (docs/DEPLOY-LAUNCHERS.md):
#   (a) deploy/k8s/generate.sh, from deploy/local.ini (two routers, r1 and
#       r2), from a second config (one unnamed [router]; a 1-stage and a
#       3-stage group, one named Tri_3, [client] sections with an inline key
#       and a key file, mpi_if eth1,ib0 and a subnet, other ports, a
#       namespace, --keys of an existing folder) and from a third (two named
#       routers, one with '_' in its name, the same ports on hosts of their
#       own, wildcard binds with backend_connect): every manifest reads (a
#       YAML reader of our own, below; PyYAML too when python3 has it, and
#       both must read the same, with integers where Kubernetes wants them);
#       one Deployment, Service and NetworkPolicy per router (its
#       --name, its ports, a Service selecting its pod only, anti-affinity
#       between routers' pods when there are several); one MPIJob per
#       [group], worker replicas = stages, its mpirun naming the group, -np
#       stages and the group's mpi_if in both if_include options; the
#       ConfigMap's INIs agree with the config key for key (only endpoints,
#       backend_connect, a named router's host (its Service), model paths,
#       the keys folder, key files and mpi_if rewritten, each as expected)
#       and pass ifp-router --check-config once the in-cluster endpoints and
#       paths are put back, with the keys decoded from the Secrets; the
#       Secrets hold the router's, the client's and one pair per group, each
#       a valid Z85 key; each router's pod mounts the keys its role reads,
#       mode 0400; secrets.yaml is mode 600; a group whose Kubernetes name
#       is a router's is refused; the Containerfile installs every package of
#       deploy/packages.txt and copies every folder CMake adds;
#   (b) deploy/slurm/ifp.sbatch's dry run: Slurm host lists expanded without
#       scontrol; each router on a node of its own (the first nodes), each
#       group's stages on the following nodes in order (1 or 2 per node);
#       the srun --mpi=pmix and mpirun commands (nodes, tasks, node list,
#       group, --name of each router, MCA if_include); the rewritten INI
#       agrees with the config and passes --check-config with keys made by
#       ifp keygen from it; --nodes; the refusals (too few nodes, a loopback
#       mpi_if across nodes, one IFP_ROUTER_ADDR for two routers).
# Run by ctest (IFP_BUILD_DIR = the build tree): needs build/tools/ifp and
# build/router/ifp-router; no network, no cluster.
set -euo pipefail

root="$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)"
build="${IFP_BUILD_DIR:-$root/build}"
ifp="$build/tools/ifp"
router="$build/router/ifp-router"
generate="$root/deploy/k8s/generate.sh"
sbatch="$root/deploy/slurm/ifp.sbatch"
t_start=$SECONDS
# shellcheck source=deploy/lib.sh
source "$root/deploy/lib.sh"
# shellcheck source=deploy/slurm/launch-lib.sh
source "$root/deploy/slurm/launch-lib.sh"

checks=0
fail() {
    printf 'FAIL: %s\n' "$*" >&2
    exit 1
}
ok() { checks=$((checks + 1)); }
step() { printf '\n== %s\n' "$*"; }
# expect_eq WHAT GOT WANT
expect_eq() {
    [[ "$2" == "$3" ]] || fail "$1: got \"$2\", want \"$3\""
    ok
}
expect_has() { # WHAT TEXT NEEDLE
    [[ "$2" == *"$3"* ]] || fail "$1: \"$3\" not found in: $2"
    ok
}

for bin in "$ifp" "$router"; do
    [[ -x "$bin" ]] || fail "$bin not built (cmake --build ${build#"$root"/})"
done
export IFP_BUILD_DIR="$build"
unset IFP_KEYS IFP_MPI_IF IFP_ROUTER_ADDR IFP_STAGES_PER_NODE IFP_SLURM_LAUNCHER IFP_SRUN_ARGS IFP_MPIRUN_ARGS
tmp="$(mktemp -d "${TMPDIR:-/tmp}/ifp-test-manifests.XXXXXX")"
trap 'rm -rf -- "$tmp"' EXIT

# The YAML reader and the checks on manifests (fail and ok above).
# shellcheck source=tests/deploy_yaml.sh
source "$root/tests/deploy_yaml.sh"

# ------------------------------------------------------------------ configs
# The second config: a 1-stage and a 3-stage group, clients with an inline key
# and a key file, other ports, its own keys folder, mpi_if not loopback.
c2dir="$tmp/c2"
mkdir -p "$c2dir"
"$ifp" keygen -o "$c2dir/bob" >/dev/null
"$ifp" keygen -o "$tmp/alice" >/dev/null
alice_key="$(grep -v '^#' "$tmp/alice.pub")"
c2="$c2dir/cluster.ini"
cat >"$c2" <<EOF
# a second shape of cluster, for tests/test_deploy_manifests.sh
[http]
listen = off

[router]
frontend = tcp://127.0.0.1:7101
backend = tcp://127.0.0.1:7102
policy = least-loaded

[model]
model = $root/models/ifp-mix/ifp-mix.gguf
predictor = $root/models/ifp-mix/ifp-mix-predictor.gguf

[security]
keys = keys

[group solo]
stages = 1
slots = 4
mpi_if = 10.1.0.0/16

[group Tri_3]
stages = 3
layers = 2,1,1
cluster = dense
mpi_if = eth1,ib0

[client alice]
key = $alice_key
max_inflight = 4

[client bob]
key = bob.pub
EOF
"$ifp" keygen --config "$c2" >/dev/null
"$router" --check-config "$c2" >/dev/null || fail "the test's own config does not pass --check-config"

# The third config: two named routers on hosts of their own, with the same
# ports (only their hosts tell them apart), each binding every interface
# with a backend_connect, one name with '_'.
c3="$tmp/c3/cluster.ini"
mkdir -p "$tmp/c3"
cat >"$c3" <<EOF
# two routers on hosts of their own, for tests/test_deploy_manifests.sh
[http]
listen = off

[router]
heartbeat_ms = 200

[router east_1]
host = rt-east
frontend = tcp://*:5555
backend = tcp://*:5556
backend_connect = tcp://rt-east:5556

[router west]
host = rt-west
frontend = tcp://*:5555
backend = tcp://*:5556
backend_connect = tcp://rt-west:5556

[model]
model = $root/models/ifp-mix/ifp-mix.gguf

[group g0]
stages = 2
cluster = dense
EOF
"$ifp" keygen --config "$c3" >/dev/null
"$router" --check-config "$c3" >/dev/null || fail "the test's third config does not pass --check-config"

# ------------------------------------------------------------------ Kubernetes
# check_k8s CONFIG OUTDIR NAMESPACE DEFAULT_IF: the manifests of OUTDIR
# against CONFIG.
check_k8s() {
    local cfg="$1" out="$2" ns="$3" pod_if="$4" tsv="$2.tsv" cfg_dir g name stages k mi cmd w f v
    local fport bport listing n_groups n_rt rlines i r_edits=() r_groups=() r_router=() sec svc svcs=()
    cfg_dir="$(dirname "$cfg")"
    listing="$(ifp_ini_groups "$cfg")"
    mapfile -t groups <<<"$listing"
    n_groups=${#groups[@]}
    mapfile -t rlines < <(ifp_ini_routers "$cfg")
    n_rt=${#rlines[@]}

    flatten "$out"
    expect_eq "secrets.yaml mode" "$(stat -c %a "$out/secrets.yaml")" 600
    expect_eq "kustomization resources" "$(ylist "$tsv" Kustomization/- resources | sort | tr '\n' ' ')" \
        "$(for f in "$out"/*.yaml; do [[ "$f" == */kustomization.yaml ]] || echo "${f##*/}"; done | sort | tr '\n' ' ')"
    if [[ "$ns" != default ]]; then expect_eq "the Namespace" "$(y "$tsv" "Namespace/$ns" metadata.name)" "$ns"; fi
    expect_eq "objects in another namespace" \
        "$(awk -F'\t' -v ns="$ns" '$2 == "metadata.namespace" && $3 != ns' "$tsv")" ""
    expect_eq "MPIJobs" "$(awk -F'\t' '$2 == "kind" && $3 == "MPIJob"' "$tsv" | wc -l)" "$n_groups"
    expect_eq "Secrets" "$(awk -F'\t' '$2 == "kind" && $3 == "Secret"' "$tsv" | wc -l)" $((n_groups + 2))
    expect_eq "Deployments (one per router)" "$(awk -F'\t' '$2 == "kind" && $3 == "Deployment"' "$tsv" | wc -l)" "$n_rt"
    expect_eq "Services (one per router)" "$(awk -F'\t' '$2 == "kind" && $3 == "Service"' "$tsv" | wc -l)" "$n_rt"

    # each router: ports on the pod and the Service, its own INI, its keys,
    # its NetworkPolicy; what the ConfigMap's INIs say of it (r_*)
    local dep srv pol c0='spec.template.spec.containers[0]' want_cmd anti=spec.template.spec.affinity.podAntiAffinity
    local want_router_keys="router.key router.pub api_keys clients/local.pub" vsrc
    for g in "${groups[@]}"; do want_router_keys+=" groups/${g%% *}.pub"; done
    for ((i = 0; i < n_rt; i++)); do
        ifp_router_fields "${rlines[i]}"
        k=ifp-router sec=router want_cmd="/opt/ifp/bin/ifp-router --config /etc/ifp/config/router.ini "
        if [[ -n "${rf[0]}" ]]; then
            k="ifp-router-$(tr 'A-Z_' 'a-z-' <<<"${rf[0]}")" sec="router ${rf[0]}" want_cmd+="--name ${rf[0]} "
        fi
        dep="Deployment/$k" srv="Service/$k" pol="NetworkPolicy/$k" svc="$k.$ns.svc"
        svcs+=("$svc")
        fport="$(ifp_tcp_port "${rf[1]}")" bport="$(ifp_tcp_port "${rf[2]}")"
        expect_eq "$dep replicas" "$(y "$tsv" "$dep" spec.replicas)" 1
        expect_eq "$dep command" "$(ylist "$tsv" "$dep" "$c0.command" | tr '\n' ' ')" "$want_cmd"
        expect_eq "$dep frontend containerPort" "$(y "$tsv" "$dep" "$c0.ports[0].name")=$(y "$tsv" "$dep" "$c0.ports[0].containerPort")" "frontend=$fport"
        expect_eq "$dep backend containerPort" "$(y "$tsv" "$dep" "$c0.ports[1].name")=$(y "$tsv" "$dep" "$c0.ports[1].containerPort")" "backend=$bport"
        expect_eq "$srv frontend" "$(y "$tsv" "$srv" "spec.ports[0].name") $(y "$tsv" "$srv" "spec.ports[0].port") $(y "$tsv" "$srv" "spec.ports[0].targetPort")" "frontend $fport $fport"
        expect_eq "$srv backend" "$(y "$tsv" "$srv" "spec.ports[1].name") $(y "$tsv" "$srv" "spec.ports[1].port") $(y "$tsv" "$srv" "spec.ports[1].targetPort")" "backend $bport $bport"
        expect_eq "$srv selects its router's pods" \
            "$(y "$tsv" "$srv" spec.selector.app.kubernetes.io/component) $(y "$tsv" "$srv" spec.selector.ifp/router)" \
            "$(y "$tsv" "$dep" spec.template.metadata.labels.app.kubernetes.io/component) $(y "$tsv" "$dep" spec.template.metadata.labels.ifp/router)"
        if [[ -n "${rf[0]}" ]]; then
            expect_eq "$srv selects $k only" "$(y "$tsv" "$srv" spec.selector.ifp/router)" "$k"
        fi
        if ((n_rt > 1)); then # the routers' pods on nodes of their own when there are the nodes
            expect_eq "$dep: kept off the other routers' nodes" \
                "$(y "$tsv" "$dep" "$anti.preferredDuringSchedulingIgnoredDuringExecution[0].podAffinityTerm.topologyKey") $(y "$tsv" "$dep" "$anti.preferredDuringSchedulingIgnoredDuringExecution[0].podAffinityTerm.labelSelector.matchLabels.app.kubernetes.io/component")" \
                "kubernetes.io/hostname router"
        else
            expect_eq "$dep: no anti-affinity for one router" "$(y "$tsv" "$dep" "$anti.preferredDuringSchedulingIgnoredDuringExecution[0].weight")" "<none>"
        fi
        # (a router reads router.key, every group's .pub, the admitted clients)
        vsrc="$(awk -F'\t' -v id="$dep" '$1 == id && $2 ~ /^spec.template.spec.volumes\[1\].projected.sources\[[0-9]+\].secret.items\[[0-9]+\].path$/ { print $3 }' "$tsv" | sort | tr '\n' ' ')"
        expect_eq "$dep: the router's keys folder" "$vsrc" "$(tr ' ' '\n' <<<"$want_router_keys" | sort | tr '\n' ' ')"
        expect_eq "$dep: the router's keys mode" "$(y "$tsv" "$dep" spec.template.spec.volumes[1].projected.defaultMode)" 256
        expect_eq "$dep: the router's keys mount" "$(y "$tsv" "$dep" "$c0.volumeMounts[1].mountPath")" /etc/ifp/keys
        expect_eq "$pol: the frontend from anyone" "$(y "$tsv" "$pol" "spec.ingress[0].ports[0].port") $(y "$tsv" "$pol" "spec.ingress[0].from[0].podSelector.matchLabels.app.kubernetes.io/component")" "$fport <none>"
        expect_eq "$pol: the backend from the groups only" \
            "$(y "$tsv" "$pol" "spec.ingress[1].ports[0].port") $(y "$tsv" "$pol" "spec.ingress[1].from[0].podSelector.matchLabels.app.kubernetes.io/component")" "$bport shard-group"
        expect_eq "$pol selects its router's pods" "$(y "$tsv" "$pol" spec.podSelector.matchLabels.ifp/router)" \
            "$(y "$tsv" "$dep" spec.template.metadata.labels.ifp/router)"
        r_groups+=("$sec"$'\tfrontend\t'"tcp://$svc:$fport" "$sec"$'\tbackend\t'"tcp://$svc:$bport")
        r_router+=("$sec"$'\tfrontend\t'"tcp://*:$fport" "$sec"$'\tbackend\t'"tcp://$pod_if:$bport")
        [[ -z "${rf[3]}" ]] || r_edits+=("$sec"$'\tbackend_connect\t'"tcp://$svc:$bport")
        [[ -z "${rf[0]}" ]] || r_edits+=("$sec"$'\thost\t'"$svc")
    done

    # one MPIJob per group: replicas, mpirun, the keys of that group only
    local mpi_if_edits=() spec
    for g in "${groups[@]}"; do
        name="${g%% *}" stages="${g##* }"
        k="ifp-$(tr 'A-Z_' 'a-z-' <<<"$name")"
        spec="MPIJob/$k"
        mi="$(ifp_ini_group_get "$cfg" "$name" mpi_if lo)"
        ifp_mpi_if_loopback "$mi" && mi="$pod_if"
        mpi_if_edits+=("group $name"$'\tmpi_if\t'"$mi")
        expect_eq "$spec apiVersion" "$(y "$tsv" "$spec" apiVersion)" kubeflow.org/v2beta1
        expect_eq "$spec worker replicas" "$(y "$tsv" "$spec" spec.mpiReplicaSpecs.Worker.replicas)" "$stages"
        expect_eq "$spec launcher replicas" "$(y "$tsv" "$spec" spec.mpiReplicaSpecs.Launcher.replicas)" 1
        expect_eq "$spec slotsPerWorker" "$(y "$tsv" "$spec" spec.slotsPerWorker)" 1
        expect_eq "$spec mpiImplementation" "$(y "$tsv" "$spec" spec.mpiImplementation)" OpenMPI
        mapfile -t cmd < <(ylist "$tsv" "$spec" spec.mpiReplicaSpecs.Launcher.template.spec.containers[0].command)
        expect_eq "$spec: mpirun" "${cmd[0]}" mpirun
        expect_eq "$spec: mpirun -np" "$(after -np "${cmd[@]}")" "$stages"
        expect_eq "$spec: --group" "$(after --group "${cmd[@]}")" "$name"
        expect_eq "$spec: ifp-shard --config" "$(after /opt/ifp/bin/ifp-shard "${cmd[@]}") $(after --config "${cmd[@]}")" "--config /etc/ifp/config/ifp.ini"
        expect_eq "$spec: btl_tcp_if_include" "$(after btl_tcp_if_include "${cmd[@]}")" "$mi"
        expect_eq "$spec: oob_tcp_if_include" "$(after oob_tcp_if_include "${cmd[@]}")" "$mi"
        expect_eq "$spec: odls_base_sigkill_timeout" "$(after odls_base_sigkill_timeout "${cmd[@]}")" 0
        expect_has "$spec: worker runs sshd" "$(ylist "$tsv" "$spec" spec.mpiReplicaSpecs.Worker.template.spec.containers[0].command)" /usr/sbin/sshd
        vsrc="$(awk -F'\t' -v id="$spec" '$1 == id && $2 ~ /^spec.mpiReplicaSpecs.Worker.template.spec.volumes\[1\].projected.sources\[[0-9]+\].secret.(name|items\[[0-9]+\].(key|path))$/ { printf "%s ", $3 }' "$tsv")"
        expect_eq "$spec: the workers' keys folder" "$vsrc" "$k-key $name.key groups/$name.key ifp-router-key router.pub router.pub "
        expect_eq "$spec: worker config mount" "$(y "$tsv" "$spec" spec.mpiReplicaSpecs.Worker.template.spec.containers[0].volumeMounts[0].mountPath)" /etc/ifp/config
        expect_eq "$spec: NetworkPolicy of its pods" \
            "$(y "$tsv" "NetworkPolicy/$k-mpi" spec.podSelector.matchLabels.ifp/group) $(y "$tsv" "NetworkPolicy/$k-mpi" "spec.ingress[0].from[0].podSelector.matchLabels.ifp/group")" "$k $k"
        expect_eq "$spec: its pods carry that label" \
            "$(y "$tsv" "$spec" spec.mpiReplicaSpecs.Launcher.template.metadata.labels.ifp/group) $(y "$tsv" "$spec" spec.mpiReplicaSpecs.Worker.template.metadata.labels.ifp/group)" "$k $k"
        # the group's Secret: its pair, valid keys
        for f in key pub; do
            v="$(y "$tsv" "Secret/$k-key" "data.$name.$f")"
            [[ "$v" != "<none>" ]] || fail "Secret/$k-key has no $name.$f"
            z85_file "Secret/$k-key $name.$f" "$(base64 -d <<<"$v")"
        done
    done
    # the Secrets of the router and the client; decoded into the keys folder
    # the router's pod sees (to check the config with)
    local keys="$out.keys"
    mkdir -p "$keys/groups" "$keys/clients"
    v="$(y "$tsv" Secret/ifp-router-key data.api_keys)"
    [[ "$v" != "<none>" ]] || fail "Secret/ifp-router-key has no api_keys (the HTTP API keys)"
    for f in router.key router.pub clients-local.pub; do
        v="$(y "$tsv" Secret/ifp-router-key "data.$f")"
        [[ "$v" != "<none>" ]] || fail "Secret/ifp-router-key has no $f"
        z85_file "Secret/ifp-router-key $f" "$(base64 -d <<<"$v")"
    done
    for f in client.key client.pub; do
        v="$(y "$tsv" Secret/ifp-client-key "data.$f")"
        [[ "$v" != "<none>" ]] || fail "Secret/ifp-client-key has no $f"
        z85_file "Secret/ifp-client-key $f" "$(base64 -d <<<"$v")"
    done
    (
        umask 077
        y "$tsv" Secret/ifp-router-key data.router.key | base64 -d >"$keys/router.key"
        y "$tsv" Secret/ifp-router-key data.router.pub | base64 -d >"$keys/router.pub"
        y "$tsv" Secret/ifp-router-key data.clients-local.pub | base64 -d >"$keys/clients/local.pub"
        y "$tsv" Secret/ifp-router-key data.api_keys | base64 -d >"$keys/api_keys"
        for g in "${groups[@]}"; do
            k="ifp-$(tr 'A-Z_' 'a-z-' <<<"${g%% *}")"
            y "$tsv" "Secret/$k-key" "data.${g%% *}.pub" | base64 -d >"$keys/groups/${g%% *}.pub"
        done
    )

    # the ConfigMap: both INIs agree with the config, and pass --check-config
    # with the in-cluster endpoints, paths and keys put back
    local cm="$out.cm" edits=() s c_key
    mkdir -p "$cm"
    y "$tsv" ConfigMap/ifp-config data.ifp.ini >"$cm/ifp.ini"
    y "$tsv" ConfigMap/ifp-config data.router.ini >"$cm/router.ini"
    for k in model predictor clusters; do
        v="$(ifp_ini_get "$cfg" model "$k")"
        [[ -z "$v" ]] || edits+=($'model\t'"$k"$'\t'"/opt/ifp/models/${v##*/models/}")
    done
    edits+=($'security\tkeys\t/etc/ifp/keys' "${mpi_if_edits[@]}" "${r_edits[@]}")
    while IFS=$'\t' read -r s k v; do
        [[ "$s" == client\ * && "$k" == key ]] && ! ifp_is_z85_key "$v" || continue
        c_key="client-${s#client }.pub"
        edits+=("$s"$'\tkey\t'"$c_key")
        y "$tsv" ConfigMap/ifp-config "data.$c_key" >"$cm/$c_key"
        expect_eq "ConfigMap $c_key" "$(cat "$cm/$c_key")" "$(cat "$(ifp_abs_path "$cfg_dir" "$v")")"
    done < <(ifp_ini_dump "$cfg")
    ini_agree "$cfg" "$cm/ifp.ini" "${edits[@]}" "${r_groups[@]}"
    ini_agree "$cfg" "$cm/router.ini" "${edits[@]}" "${r_router[@]}"
    local f_ini out_check n_clients sed_svc=()
    n_clients=$(($(ifp_ini_dump "$cfg" | awk -F'\t' '$1 ~ /^client / && $2 == "key"' | wc -l) + 1))
    for svc in "${svcs[@]}"; do sed_svc+=(-e "s#tcp://$svc:#tcp://127.0.0.1:#"); done
    for f_ini in ifp router; do
        sed -e "s#/opt/ifp/models/#$root/models/#" -e "s#^keys = /etc/ifp/keys\$#keys = $keys#" \
            "${sed_svc[@]}" -e "s#tcp://\*:#tcp://127.0.0.1:#" -e "s#tcp://$pod_if:#tcp://127.0.0.1:#" \
            "$cm/$f_ini.ini" >"$cm/check-$f_ini.ini"
        out_check="$("$router" --check-config "$cm/check-$f_ini.ini" 2>&1)" || fail "ConfigMap $f_ini.ini: ifp-router --check-config: $out_check"
        expect_has "ConfigMap $f_ini.ini --check-config" "$out_check" ": ok: $n_groups group"
        expect_has "ConfigMap $f_ini.ini --check-config keys" "$out_check" "CURVE on ($n_groups group keys, $n_clients client keys)"
    done
    printf '%s: %d objects, %d groups, ConfigMap INIs pass --check-config\n' "$out" \
        "$(awk -F'\t' '$2 == "kind"' "$tsv" | wc -l)" "$n_groups"
}

step "k8s: generate.sh from deploy/local.ini (new keys)"
out1="$tmp/k8s-local"
gen_out="$("$generate" "$root/deploy/local.ini" "$out1" 2>&1)" || fail "generate.sh: $gen_out"
printf '%s\n' "$gen_out"
expect_has "generate.sh says mpi_if lo is replaced" "$gen_out" "[group g0] mpi_if = lo is loopback only"
expect_has "generate.sh says keep secrets private" "$gen_out" "keep it private"
check_k8s "$root/deploy/local.ini" "$out1" default eth0
expect_eq "image" "$(y "$out1.tsv" Deployment/ifp-router-r1 spec.template.spec.containers[0].image)" ifp:latest
expect_eq "one manifest per router" "$(cd "$out1" && ls router*.yaml | tr '\n' ' ')" "router-r1.yaml router-r2.yaml "
expect_has "generate.sh names both routers' Services for clients" "$gen_out" \
    "ifp client --router tcp://ifp-router-r1.default.svc:5555,tcp://ifp-router-r2.default.svc:5565"

step "k8s: generate.sh from a 1-stage + 3-stage config with clients, --keys, --namespace, --image, --pod-if"
out2="$tmp/k8s-c2"
"$ifp" keygen --config "$c2" --keys "$tmp/c2-keys" >/dev/null
gen_out="$("$generate" "$c2" "$out2" --namespace serving --image registry.example/ifp:1.0 --keys "$tmp/c2-keys" --pod-if net0 2>&1)" ||
    fail "generate.sh: $gen_out"
printf '%s\n' "$gen_out"
check_k8s "$c2" "$out2" serving net0
expect_eq "image" "$(y "$out2.tsv" MPIJob/ifp-tri-3 spec.mpiReplicaSpecs.Worker.template.spec.containers[0].image)" registry.example/ifp:1.0
expect_eq "--keys: the router's key is the folder's" \
    "$(y "$out2.tsv" Secret/ifp-router-key data.router.pub | base64 -d)" "$(cat "$tmp/c2-keys/router.pub")"
expect_eq "--keys: a group's secret key is the folder's" \
    "$(y "$out2.tsv" Secret/ifp-tri-3-key data.Tri_3.key | base64 -d)" "$(cat "$tmp/c2-keys/groups/Tri_3.key")"
mapfile -t cmd < <(ylist "$out2.tsv" MPIJob/ifp-solo 'spec.mpiReplicaSpecs.Launcher.template.spec.containers[0].command')
expect_eq "1-stage group: no TCP BTL" "$(after btl "${cmd[@]}")" self
gen_out="$("$generate" "$c2" "$tmp/k8s-bad" --namespace Bad_NS 2>&1)" && fail "generate.sh took --namespace Bad_NS"
expect_has "a bad namespace is refused" "$gen_out" "expected a DNS label"
if command -v kubectl >/dev/null; then
    n_kz="$(timeout 60 kubectl kustomize "$out2" | grep -c '^kind:')" || fail "kubectl kustomize $out2 failed"
    expect_eq "kubectl kustomize: objects" "$n_kz" "$(awk -F'\t' '$2 == "kind" && $1 != "Kustomization/-"' "$out2.tsv" | wc -l)"
else
    echo "(kubectl not installed: kubectl kustomize not tried)"
fi
((have_pyyaml)) || echo "(python3 with PyYAML not installed: the manifests were read by the test's own reader only)"

step "k8s: generate.sh from two named routers with the same ports on hosts of their own (c3)"
out3="$tmp/k8s-c3"
gen_out="$("$generate" "$c3" "$out3" --namespace serving 2>&1)" || fail "generate.sh: $gen_out"
printf '%s\n' "$gen_out"
check_k8s "$c3" "$out3" serving eth0
if command -v kubectl >/dev/null; then
    n_kz="$(timeout 60 kubectl kustomize "$out3" | grep -c '^kind:')" || fail "kubectl kustomize $out3 failed"
    expect_eq "kubectl kustomize: objects" "$n_kz" "$(awk -F'\t' '$2 == "kind" && $1 != "Kustomization/-"' "$out3.tsv" | wc -l)"
fi
expect_eq "c3: the routers' hosts are their Services" \
    "$(ifp_ini_get "$out3.cm/router.ini" "router east_1" host) $(ifp_ini_get "$out3.cm/router.ini" "router west" host)" \
    "ifp-router-east-1.serving.svc ifp-router-west.serving.svc"
sed 's/^\[group g0\]$/[group router-west]/' "$c3" >"$tmp/c3/clash.ini"
"$ifp" keygen --config "$tmp/c3/clash.ini" >/dev/null
gen_out="$("$generate" "$tmp/c3/clash.ini" "$tmp/k8s-clash" 2>&1)" && fail "generate.sh took a group named like a router's objects"
expect_has "a group named like a router is refused" "$gen_out" "[group router-west] becomes ifp-router-west in Kubernetes, a name [router west]'s objects take"

step "k8s: the Containerfile"
cf="$root/deploy/k8s/Containerfile"
expect_eq "base image" "$(grep -m1 '^FROM ' "$cf")" "FROM debian:bookworm AS base"
installed="$(awk '/apt-get install/ { on = 1 } on { print } on && !/\\$/ { on = 0 }' "$cf" | tr -s ' \\\t' '\n')"
while read -r pkg; do
    grep -qx -- "$pkg" <<<"$installed" || fail "the Containerfile does not install $pkg (deploy/packages.txt)"
    ok
done < <(ifp_packages)
while read -r dir; do
    grep -q "^COPY $dir $dir/\$" "$cf" || fail "the Containerfile does not copy $dir/ (add_subdirectory in CMakeLists.txt)"
    ok
done < <(sed -n 's/^add_subdirectory(\([^) ]*\)).*/\1/p' "$root/CMakeLists.txt")
expect_has "binaries" "$(grep '^COPY --from=build' "$cf")" "/build/router/ifp-router /build/shard/ifp-shard /opt/ifp/bin/"
expect_eq "models" "$(grep -c '^COPY models/ /opt/ifp/models/$' "$cf")" 1

# ------------------------------------------------------------------ Slurm
# dry LIST [VAR=VALUE...] CONFIG: the dry run's output (exit status kept).
dry() {
    local list="$1" cfg="${!#}"
    shift
    env IFP_SLURM_DRY_RUN=1 SLURM_JOB_NODELIST="$list" IFP_SCONTROL=/nonexistent/scontrol \
        IFP_SLURM_DIR="$tmp/slurm" "${@:1:$#-1}" bash "$sbatch" "$cfg" 2>&1
}
# section OUT NAME: the lines after "== NAME" up to the next "== ".
section() { awk -v s="== $2" '$0 == s { on = 1; next } on && /^== / { exit } on' <<<"$1"; }
ini_of() { awk 'f { print } /^== .*\.ini$/ { f = 1 }' <<<"$1"; }

step "Slurm: host lists expanded without scontrol"
o="$(dry 'rack[1-2]-n[08-10],login,x[7]' IFP_STAGES_PER_NODE=2 IFP_ROUTER_ADDR=10.0.0.1,10.0.0.2 "$root/deploy/local.ini")" || fail "$o"
expect_eq "expanded, in order" \
    "$(section "$o" hosts | awk '$1 == "router" { print $3 } $1 == "stage" && !seen[$4]++ { print $4 } $1 == "unused" { print $2 }' | tr '\n' ' ')" \
    "rack1-n08 rack1-n09 rack1-n10 rack2-n08 rack2-n09 rack2-n10 login x7 "

step "Slurm: deploy/local.ini (two routers), 2 stages per node (mpi_if lo: each group on one node)"
o="$(dry 'node[01-05]' IFP_STAGES_PER_NODE=2 IFP_ROUTER_ADDR=10.0.0.1,10.0.0.2 "$root/deploy/local.ini")" || fail "$o"
printf '%s\n' "$o" | sed -n '1,/^== commands/p'
expect_eq "hosts" "$(section "$o" hosts | tr '\n' ';')" \
    "router r1 node01 10.0.0.1;router r2 node02 10.0.0.2;stage g0 0 node03;stage g0 1 node03;stage g1 0 node04;stage g1 1 node04;stage g2 0 node05;stage g2 1 node05;"
expect_eq "network" "$(section "$o" network | grep -v '^mpi_if' | tr '\n' ';')" \
    "frontend r1 tcp://10.0.0.1:5555 (clients);backend r1 tcp://10.0.0.1:5556 (groups);frontend r2 tcp://10.0.0.2:5565 (clients);backend r2 tcp://10.0.0.2:5566 (groups);"
cmds="$(section "$o" commands)"
for r in r1:node01 r2:node02; do
    line="$(grep "^router ${r%:*}: " <<<"$cmds")"
    expect_has "router ${r%:*} step" "$line" "srun --nodes=1 --ntasks=1 --nodelist=${r#*:} --mpi=none --kill-on-bad-exit=1 --job-name=ifp-router-${r%:*} "
    expect_has "router ${r%:*} step" "$line" "/router/ifp-router --config $tmp/slurm/job-dryrun/ifp.ini --name ${r%:*} > $tmp/slurm/job-dryrun/router-${r%:*}.log"
done
for g in g0:node03 g1:node04 g2:node05; do
    line="$(grep "^group ${g%:*}: " <<<"$cmds")"
    expect_has "group ${g%:*} step" "$line" "env OMPI_MCA_btl=self,vader OMPI_MCA_btl_tcp_if_include=lo OMPI_MCA_oob_tcp_if_include=lo srun --mpi=pmix --nodes=1 --ntasks=2 --ntasks-per-node=2 --nodelist=${g#*:} "
    expect_has "group ${g%:*} step" "$line" "/shard/ifp-shard --config $tmp/slurm/job-dryrun/ifp.ini --group ${g%:*} >"
done
expect_has "keys once before the steps" "$cmds" "keygen $ifp keygen --config $tmp/slurm/job-dryrun/ifp.ini"
ini_of "$o" >"$tmp/slurm-local.ini"
ini_agree "$root/deploy/local.ini" "$tmp/slurm-local.ini" \
    $'router r1\tfrontend\ttcp://10.0.0.1:5555' $'router r1\tbackend\ttcp://10.0.0.1:5556' \
    $'router r2\tfrontend\ttcp://10.0.0.2:5565' $'router r2\tbackend\ttcp://10.0.0.2:5566' \
    $'model\tmodel\t'"$root/models/ifp-mix/ifp-mix.gguf" $'model\tpredictor\t'"$root/models/ifp-mix/ifp-mix-predictor.gguf" \
    $'model\tclusters\t'"$root/models/ifp-mix/clusters-k4.gguf" $'security\tkeys\t'"$tmp/slurm/keys"
"$ifp" keygen --config "$tmp/slurm-local.ini" >/dev/null
check="$("$router" --check-config "$tmp/slurm-local.ini" 2>&1)" || fail "the rewritten INI: $check"
expect_has "the rewritten INI passes --check-config" "$check" ": ok: 3 groups"

step "Slurm: deploy/local.ini, one stage per node"
o="$(dry 'node[01-08]' IFP_ROUTER_ADDR=10.0.0.1,10.0.0.2 "$root/deploy/local.ini")" && fail "a loopback mpi_if across nodes was taken"
expect_has "loopback mpi_if across nodes is refused" "$o" "[group g0] spans 2 nodes but its mpi_if = lo is loopback only"
o="$(dry 'node[01-08]' IFP_ROUTER_ADDR=10.0.0.1,10.0.0.2 IFP_MPI_IF=eth1 "$root/deploy/local.ini")" || fail "$o"
expect_eq "hosts" "$(section "$o" hosts | tr '\n' ';')" \
    "router r1 node01 10.0.0.1;router r2 node02 10.0.0.2;stage g0 0 node03;stage g0 1 node04;stage g1 0 node05;stage g1 1 node06;stage g2 0 node07;stage g2 1 node08;"
expect_has "group g1 step" "$(section "$o" commands | grep '^group g1: ')" \
    "env OMPI_MCA_btl=tcp,self,vader OMPI_MCA_btl_tcp_if_include=eth1 OMPI_MCA_oob_tcp_if_include=eth1 srun --mpi=pmix --nodes=2 --ntasks=2 --ntasks-per-node=1 --nodelist=node05,node06 "
expect_eq "the INI says mpi_if = eth1" "$(ini_of "$o" | grep -c '^mpi_if = eth1$')" 3
o="$(dry 'node[01-04]' IFP_STAGES_PER_NODE=2 "$root/deploy/local.ini")" && fail "4 nodes were enough for 5"
expect_has "too few nodes" "$o" "the allocation has 4 nodes; $root/deploy/local.ini needs 5 (2 for the routers, then 3 groups"
o="$(dry 'node[01-05]' IFP_STAGES_PER_NODE=2 IFP_ROUTER_ADDR=10.0.0.1 "$root/deploy/local.ini")" && fail "one IFP_ROUTER_ADDR for two routers was taken"
expect_has "one address per router" "$o" "IFP_ROUTER_ADDR=10.0.0.1: 1 address(es) for 2 router(s)"
o="$(dry 'node[01-08]' IFP_MPI_IF=eth1 "$root/deploy/local.ini")" || fail "$o"
expect_has "an unresolved router node is named" "$(section "$o" hosts | head -1)" "router r1 node01 node01 (unresolved here"
if getent ahostsv4 localhost >/dev/null 2>&1; then
    o="$(dry 'localhost,node[2-5]' IFP_STAGES_PER_NODE=2 "$root/deploy/local.ini")" || fail "$o"
    expect_eq "the router's address from the resolver" "$(section "$o" hosts | head -1)" "router r1 localhost 127.0.0.1"
fi
expect_eq "--nodes" "$(bash "$sbatch" --nodes "$root/deploy/local.ini")" 8
expect_eq "--nodes, 2 stages per node" "$(IFP_STAGES_PER_NODE=2 bash "$sbatch" --nodes "$root/deploy/local.ini")" 5

step "Slurm: the 1-stage + 3-stage config, 2 stages per node, srun and mpirun"
expect_eq "--nodes" "$(IFP_STAGES_PER_NODE=2 bash "$sbatch" --nodes "$c2")" 4
o="$(dry 'n[1-4]' IFP_STAGES_PER_NODE=2 IFP_ROUTER_ADDR=10.9.0.1 "$c2")" || fail "$o"
expect_eq "hosts" "$(section "$o" hosts | tr '\n' ';')" \
    "router n1 10.9.0.1;stage solo 0 n2;stage Tri_3 0 n3;stage Tri_3 1 n3;stage Tri_3 2 n4;"
cmds="$(section "$o" commands)"
expect_has "solo step" "$(grep '^group solo: ' <<<"$cmds")" "env OMPI_MCA_btl=self,vader OMPI_MCA_btl_tcp_if_include=10.1.0.0/16 OMPI_MCA_oob_tcp_if_include=10.1.0.0/16 srun --mpi=pmix --nodes=1 --ntasks=1 --ntasks-per-node=1 --nodelist=n2 "
expect_has "Tri_3 step" "$(grep '^group Tri_3: ' <<<"$cmds")" "env OMPI_MCA_btl=tcp,self,vader OMPI_MCA_btl_tcp_if_include=eth1,ib0 OMPI_MCA_oob_tcp_if_include=eth1,ib0 srun --mpi=pmix --nodes=2 --ntasks=3 --ntasks-per-node=2 --nodelist=n3,n4 "
expect_has "Tri_3 step" "$(grep '^group Tri_3: ' <<<"$cmds")" "--group Tri_3 >"
ini_of "$o" >"$tmp/slurm-c2.ini"
ini_agree "$c2" "$tmp/slurm-c2.ini" \
    $'router\tfrontend\ttcp://10.9.0.1:7101' $'router\tbackend\ttcp://10.9.0.1:7102' \
    $'model\tmodel\t'"$root/models/ifp-mix/ifp-mix.gguf" $'model\tpredictor\t'"$root/models/ifp-mix/ifp-mix-predictor.gguf" \
    $'security\tkeys\t'"$c2dir/keys" $'client bob\tkey\t'"$c2dir/bob.pub"
check="$("$router" --check-config "$tmp/slurm-c2.ini" 2>&1)" || fail "the rewritten INI: $check"
expect_has "the rewritten INI passes --check-config" "$check" ": ok: 2 groups"
o="$(dry 'n[1-4]' IFP_STAGES_PER_NODE=2 IFP_ROUTER_ADDR=10.9.0.1 IFP_SLURM_LAUNCHER=mpirun "$c2")" || fail "$o"
expect_has "Tri_3 by mpirun" "$(section "$o" commands | grep '^group Tri_3: ')" \
    "mpirun -np 3 --host n3:2,n4:2 --bind-to none --mca btl tcp,self,vader --mca btl_tcp_if_include eth1,ib0 --mca oob_tcp_if_include eth1,ib0 --mca odls_base_sigkill_timeout 0"
expect_has "router still a step" "$(section "$o" commands | grep '^router: ')" "srun --nodes=1 --ntasks=1 --nodelist=n1"


step "Slurm: two named routers on hosts of their own (c3), backend_connect rewritten"
expect_eq "--nodes" "$(bash "$sbatch" --nodes "$c3")" 4
o="$(dry 'n[1-4]' IFP_ROUTER_ADDR=10.9.0.1,10.9.0.2 IFP_MPI_IF=eth1 "$c3")" || fail "$o"
expect_eq "hosts" "$(section "$o" hosts | tr '\n' ';')" \
    "router east_1 n1 10.9.0.1;router west n2 10.9.0.2;stage g0 0 n3;stage g0 1 n4;"
cmds="$(section "$o" commands)"
expect_has "router east_1 step" "$(grep '^router east_1: ' <<<"$cmds")" "--nodelist=n1 --mpi=none --kill-on-bad-exit=1 --job-name=ifp-router-east_1 "
expect_has "router west step" "$(grep '^router west: ' <<<"$cmds")" "ifp-router --config $tmp/slurm/job-dryrun/ifp.ini --name west > $tmp/slurm/job-dryrun/router-west.log"
ini_of "$o" >"$tmp/slurm-c3.ini"
ini_agree "$c3" "$tmp/slurm-c3.ini" \
    $'router east_1\tfrontend\ttcp://10.9.0.1:5555' $'router east_1\tbackend\ttcp://10.9.0.1:5556' \
    $'router east_1\tbackend_connect\ttcp://10.9.0.1:5556' \
    $'router west\tfrontend\ttcp://10.9.0.2:5555' $'router west\tbackend\ttcp://10.9.0.2:5556' \
    $'router west\tbackend_connect\ttcp://10.9.0.2:5556' \
    $'model\tmodel\t'"$root/models/ifp-mix/ifp-mix.gguf" $'security\tkeys\t'"$tmp/slurm/keys" $'group g0\tmpi_if\teth1'
"$ifp" keygen --config "$tmp/slurm-c3.ini" >/dev/null
check="$("$router" --check-config "$tmp/slurm-c3.ini" 2>&1)" || fail "the rewritten INI: $check"
expect_has "the rewritten INI passes --check-config" "$check" ": ok: 1 group"

printf '\nok: %d checks in %ds\n' "$checks" $((SECONDS - t_start))
