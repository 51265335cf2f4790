#!/usr/bin/env bash
# deploy/k8s/generate.sh — Kubernetes manifests for the ifp cluster of one
# INI: each router as a Deployment + Service (ifp-router for [router]
# itself; ifp-router-NAME per [router NAME], its pod run with --name NAME
# and kept off the other routers' nodes when the scheduler can), one MPI
# Operator MPIJob (kubeflow.org/v2beta1) per [group NAME] (a launcher
# running mpirun, one worker pod per stage; every group connects to every
# router's Service), the INI as a ConfigMap, the CURVE keys as Secrets,
# NetworkPolicies, and a kustomization.yaml listing them.
#
# usage: deploy/k8s/generate.sh CONFIG OUTDIR [--image IMAGE] [--namespace NS]
#            [--keys DIR] [--mpi-if IFS] [--pod-if IF]
#   --image IMAGE   built from deploy/k8s/Containerfile (default ifp:latest)
#   --namespace NS  of every object (default: default); the routers' DNS names
#                   (ifp-router[-NAME].NS.svc) are written into the groups' INI
#   --keys DIR      take the keys from DIR (ifp keygen --config makes the
#                   missing ones there); default: fresh keys in a temporary
#                   folder, deleted afterwards: OUTDIR/secrets.yaml is then
#                   their only copy.  Keep secrets.yaml private either way.
#   --mpi-if IFS    every group's mpi_if (default: the config's; a loopback
#                   one becomes --pod-if: a group's ranks are in different pods)
#   --pod-if IF     the pods' network interface (default eth0): each router's
#                   backend binds it
# Then: kubectl apply -k OUTDIR.  Needs build/tools/ifp (IFP_BUILD_DIR) for
# the keys; docs/DEPLOY-LAUNCHERS.md says what runs where.
set -euo pipefail

here="$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)"
# shellcheck source=deploy/lib.sh
source "$here/../lib.sh"
# shellcheck source=deploy/slurm/launch-lib.sh
source "$here/../slurm/launch-lib.sh"

usage() { awk 'NR >= 2 && !/^#/ { exit } NR >= 2' "$here/generate.sh" | sed 's/^# \{0,1\}//'; }

# ------------------------------------------------------------------ options
image=ifp:latest ns=default keys_from="" mpi_if_all="" pod_if=eth0
args=()
while (($#)); do
    case "$1" in
    -h | --help)
        usage
        exit 0
        ;;
    --image | --namespace | --keys | --mpi-if | --pod-if)
        (($# >= 2)) || ifp_die "$1 needs a value"
        case "$1" in
        --image) image="$2" ;;
        --namespace) ns="$2" ;;
        --keys) keys_from="$2" ;;
        --mpi-if) mpi_if_all="$2" ;;
        --pod-if) pod_if="$2" ;;
        esac
        shift 2
        ;;
    -*) ifp_die "unknown option: $1 (try --help)" ;;
    *)
        args+=("$1")
        shift
        ;;
    esac
done
((${#args[@]} == 2)) || {
    usage >&2
    exit 2
}
cfg="${args[0]}" out="${args[1]}"
[[ -r "$cfg" ]] || ifp_die "config not found: $cfg"
cfg="$(realpath -s -- "$cfg")"
cfg_dir="$(dirname "$cfg")"
[[ "$ns" =~ ^[a-z0-9]([-a-z0-9]*[a-z0-9])?$ && ${#ns} -le 63 ]] || ifp_die "--namespace $ns: expected a DNS label (a-z 0-9 -)"
[[ "$pod_if" =~ ^[A-Za-z0-9_.:-]+$ ]] || ifp_die "--pod-if $pod_if: expected an interface name"
[[ -z "$mpi_if_all" || "$mpi_if_all" =~ ^[A-Za-z0-9_.:/,-]+$ ]] || ifp_die "--mpi-if $mpi_if_all: expected interfaces or subnets, comma-separated"
[[ -n "$image" && "$image" != *[[:space:]\"]* ]] || ifp_die "--image \"$image\": expected an image reference"
ifp_bin="${IFP_BUILD_DIR:-$IFP_ROOT/build}/tools/ifp"

listing="$(ifp_ini_groups "$cfg")" || ifp_die "$cfg: fix the error above"
mapfile -t groups <<<"$listing"

# Where things are inside the image and the pods (deploy/k8s/Containerfile).
BIN=/opt/ifp/bin
CONF_DIR=/etc/ifp/config
KEYS_DIR=/etc/ifp/keys

# ------------------------------------------------------------------ YAML bits
# q TEXT: a double-quoted YAML scalar (never read as a number, bool or null).
q() {
    local s="$1"
    s="${s//\\/\\\\}"
    s="${s//\"/\\\"}"
    printf '"%s"' "$s"
}
# literal INDENT < TEXT: TEXT as the lines of a `|` block scalar.
literal() {
    local pad line
    pad="$(printf '%*s' "$1" '')"
    while IFS= read -r line || [[ -n "$line" ]]; do
        if [[ -z "$line" ]]; then echo; else printf '%s%s\n' "$pad" "$line"; fi
    done
}
# labels INDENT COMPONENT [GROUP]: the labels every object of ours carries.
labels() {
    local pad
    pad="$(printf '%*s' "$1" '')"
    printf '%sapp.kubernetes.io/name: ifp\n%sapp.kubernetes.io/component: %s\n' "$pad" "$pad" "$2"
    [[ -z "${3:-}" ]] || printf '%sifp/group: %s\n' "$pad" "$3"
}
# rlabels INDENT I: the labels of router I's objects and pod (a named
# router's carry ifp/router: its Kubernetes name, which its Service selects).
rlabels() {
    labels "$1" router
    [[ -z "${rname[$2]}" ]] || printf '%*sifp/router: %s\n' "$1" '' "${rk[$2]}"
}
# meta KIND NAME COMPONENT [GROUP]: apiVersion-less head of an object.
meta() {
    printf 'kind: %s\nmetadata:\n  name: %s\n  namespace: %s\n  labels:\n' "$1" "$2" "$ns"
    labels 4 "$3" "${4:-}"
}
# rmeta KIND I: the head of an object of router I.
rmeta() {
    printf 'kind: %s\nmetadata:\n  name: %s\n  namespace: %s\n  labels:\n' "$1" "${rk[$2]}" "$ns"
    rlabels 4 "$2"
}

# ------------------------------------------------------------------ the config
# Kubernetes object names of the groups: DNS labels (lowercase, '-'); the
# worker pods are NAME-worker-I.
declare -A kname=() taken=() g_if=()
for g in "${groups[@]}"; do
    name="${g%% *}" stages="${g##* }"
    k="ifp-$(tr 'A-Z_' 'a-z-' <<<"$name")"
    [[ "$k" =~ ^[a-z]([-a-z0-9]*[a-z0-9])?$ ]] || ifp_die "[group $name]: \"$k\" is not a valid Kubernetes name; rename the group (letters and digits, '-' or '_' inside)"
    w="$k-worker-$((stages - 1))"
    ((${#w} <= 63)) || ifp_die "[group $name]: its worker pods would be named $w, longer than 63 characters; use a shorter group name"
    [[ -z "${taken[$k]:-}" ]] || ifp_die "[group $name] and [group ${taken[$k]}] both become $k in Kubernetes; rename one"
    taken[$k]="$name" kname[$name]="$k"
    mi="${mpi_if_all:-$(ifp_ini_group_get "$cfg" "$name" mpi_if lo)}"
    if ifp_mpi_if_loopback "$mi"; then
        printf 'note: [group %s] mpi_if = %s is loopback only: its ranks are in different pods; using %s\n' "$name" "$mi" "$pod_if" >&2
        mi="$pod_if"
    fi
    g_if[$name]="$mi"
done

# The routers (lib.sh: ifp_ini_routers), in config order: rname ("" =
# [router] itself), rsec (its INI section), rk (Kubernetes name of its
# Deployment, Service and NetworkPolicy: ifp-router, or ifp-router-NAME in
# lower case with '-' for '_'), rsvc (its Service's DNS name), rfport,
# rbport, rbc (backend_connect set).
rname=() rsec=() rk=() rsvc=() rfport=() rbport=() rbc=()
declare -A rtaken=()
while IFS= read -r line; do
    ifp_router_fields "$line"
    if [[ -z "${rf[0]}" ]]; then
        sec=router k=ifp-router
    else
        sec="router ${rf[0]}" k="ifp-router-$(tr 'A-Z_' 'a-z-' <<<"${rf[0]}")"
    fi
    [[ "$k" =~ ^[a-z]([-a-z0-9]*[a-z0-9])?$ && ${#k} -le 63 ]] ||
        ifp_die "[$sec]: \"$k\" is not a valid Kubernetes name; rename the router (letters and digits, '-' or '_' inside, at most 52 characters)"
    [[ -z "${rtaken[$k]:-}" ]] || ifp_die "[$sec] and [${rtaken[$k]}] both become $k in Kubernetes; rename one"
    rtaken[$k]="$sec"
    fport="$(ifp_tcp_port "${rf[1]}")" bport="$(ifp_tcp_port "${rf[2]}")"
    [[ -n "$fport" && -n "$bport" ]] || ifp_die "[$sec] frontend = ${rf[1]}, backend = ${rf[2]}: the router's Service needs tcp://HOST:PORT endpoints"
    rname+=("${rf[0]}") rsec+=("$sec") rk+=("$k") rsvc+=("$k.$ns.svc") rfport+=("$fport") rbport+=("$bport") rbc+=("${rf[3]}")
done < <(ifp_ini_routers "$cfg")
# a group's objects (its MPIJob, the Service the operator makes for its
# workers, its Secret NAME-key) must not take the routers' or the client's
for g in "${groups[@]}"; do
    k="${kname[${g%% *}]}" owner="the routers' or the client's"
    [[ -z "${rtaken[$k]:-}" ]] || owner="[${rtaken[$k]}]'s"
    [[ "$k" != ifp-router && "$k" != ifp-client && -z "${rtaken[$k]:-}" ]] ||
        ifp_die "[group ${g%% *}] becomes $k in Kubernetes, a name $owner objects take; rename the group"
done
curve="$(ifp_ini_get "$cfg" security curve on)"

# in_image KEY VALUE: the path inside the image of a [model] file.
in_image() {
    local abs root
    abs="$(realpath -m -- "$(ifp_abs_path "$cfg_dir" "$2")")"
    root="$(realpath -m -- "$IFP_ROOT")"
    [[ "$abs" == "$root/models/"* ]] ||
        ifp_die "[model] $1 = $2 ($abs): the image holds the repository's models/ folder only (deploy/k8s/Containerfile); put the file there"
    printf '/opt/ifp/%s\n' "${abs#"$root"/}"
}

edits=() client_files=()
for k in model predictor clusters; do
    v="$(ifp_ini_get "$cfg" model "$k")"
    [[ -z "$v" ]] || edits+=($'model\t'"$k"$'\t'"$(in_image "$k" "$v")")
done
[[ "$curve" == off ]] || edits+=($'security\tkeys\t'"$KEYS_DIR")
# a client key given as a file: the file goes into the ConfigMap next to the INI
while IFS=$'\t' read -r s k v; do
    [[ "$s" == client\ * && "$k" == key ]] && ! ifp_is_z85_key "$v" || continue
    f="$(ifp_abs_path "$cfg_dir" "$v")"
    [[ -r "$f" ]] || ifp_die "[$s] key = $v: $f not found"
    client_files+=("${s#client }" "$f")
    edits+=("$s"$'\tkey\t'"client-${s#client }.pub")
done < <(ifp_ini_dump "$cfg")
for g in "${groups[@]}"; do edits+=("group ${g%% *}"$'\tmpi_if\t'"${g_if[${g%% *}]}"); done

# The groups' INI: they connect to each router's Service.  The routers': each
# binds every interface for clients and the pod's interface for the groups
# (ZeroMQ cannot bind a Service's name; the Service forwards to the pod).
# (A backend_connect names the Service too; with several routers, each one's
# host is its Service: the routers' addresses are then never on one host.)
e_groups=() e_router=()
for i in "${!rk[@]}"; do
    e_groups+=("${rsec[i]}"$'\tfrontend\t'"tcp://${rsvc[i]}:${rfport[i]}" "${rsec[i]}"$'\tbackend\t'"tcp://${rsvc[i]}:${rbport[i]}")
    e_router+=("${rsec[i]}"$'\tfrontend\t'"tcp://*:${rfport[i]}" "${rsec[i]}"$'\tbackend\t'"tcp://$pod_if:${rbport[i]}")
    [[ -z "${rbc[i]}" ]] || edits+=("${rsec[i]}"$'\tbackend_connect\t'"tcp://${rsvc[i]}:${rbport[i]}")
    [[ -z "${rname[i]}" ]] || edits+=("${rsec[i]}"$'\thost\t'"${rsvc[i]}")
done
ini_groups="$(ifp_ini_rewrite "$cfg" "written by deploy/k8s/generate.sh from $cfg
read by every rank of the shard groups: each router's backend is its Service ($(IFS=' ' && echo "${rsvc[*]}"))" \
    "${e_groups[@]}" "${edits[@]}")" ||
    ifp_die "$cfg: cannot rewrite it"
ini_router="$(ifp_ini_rewrite "$cfg" "written by deploy/k8s/generate.sh from $cfg
read by the routers: each binds its frontend on every interface of its pod and its backend on $pod_if" \
    "${e_router[@]}" "${edits[@]}")" ||
    ifp_die "$cfg: cannot rewrite it"

# ------------------------------------------------------------------ the keys
keys="" tmp_keys=""
cleanup() { [[ -z "$tmp_keys" ]] || rm -rf -- "$tmp_keys"; }
trap cleanup EXIT
if [[ "$curve" != off ]]; then
    [[ -x "$ifp_bin" ]] || ifp_die "$ifp_bin not built (cmake -S . -B build && cmake --build build -j), or set IFP_BUILD_DIR"
    if [[ -n "$keys_from" ]]; then
        keys="$(realpath -m -- "$keys_from")"
    else
        tmp_keys="$(mktemp -d "${TMPDIR:-/tmp}/ifp-k8s-keys.XXXXXX")"
        keys="$tmp_keys/keys"
    fi
    "$ifp_bin" keygen --config "$cfg" --keys "$keys" >&2 || ifp_die "ifp keygen failed"
fi
b64() { base64 -w0 <"$1"; }

# ------------------------------------------------------------------ writing
mkdir -p "$out"
rm -f "$out"/group-*.yaml "$out"/router-*.yaml "$out"/{namespace,config,secrets,router,network-policy,kustomization}.yaml
files=()

if [[ "$ns" != default ]]; then
    {
        printf 'apiVersion: v1\nkind: Namespace\nmetadata:\n  name: %s\n  labels:\n' "$ns"
        labels 4 namespace
    } >"$out/namespace.yaml"
    files+=(namespace.yaml)
fi

{
    printf '# The cluster INI, rewritten for Kubernetes (deploy/k8s/generate.sh).\napiVersion: v1\n'
    meta ConfigMap ifp-config config
    printf 'data:\n  ifp.ini: |\n'
    literal 4 <<<"$ini_groups"
    printf '  router.ini: |\n'
    literal 4 <<<"$ini_router"
    for ((i = 0; i < ${#client_files[@]}; i += 2)); do
        printf '  client-%s.pub: |\n' "${client_files[i]}"
        literal 4 <"${client_files[i + 1]}"
    done
} >"$out/config.yaml"
files+=(config.yaml)

if [[ "$curve" != off ]]; then
    (
        umask 077
        {
            printf '# CURVE keys of the deployment (deploy/k8s/generate.sh): SECRET KEYS.\n'
            printf '# Keep this file private; kubectl apply it, and delete it or store it encrypted.\n'
            printf 'apiVersion: v1\n'
            meta Secret ifp-router-key keys
            printf 'type: Opaque\ndata:\n'
            printf '  router.key: %s\n  router.pub: %s\n' "$(b64 "$keys/router.key")" "$(b64 "$keys/router.pub")"
            # the HTTP API keys ([http] auth follows CURVE by default)
            [[ -e "$keys/api_keys" ]] && printf '  api_keys: %s\n' "$(b64 "$keys/api_keys")"
            for f in "$keys"/clients/*.pub; do
                [[ -e "$f" ]] && printf '  clients-%s: %s\n' "$(basename "$f")" "$(b64 "$f")"
            done
            for g in "${groups[@]}"; do
                name="${g%% *}"
                printf -- '---\napiVersion: v1\n'
                meta Secret "${kname[$name]}-key" keys "${kname[$name]}"
                printf 'type: Opaque\ndata:\n'
                printf '  %s.key: %s\n  %s.pub: %s\n' "$name" "$(b64 "$keys/groups/$name.key")" "$name" "$(b64 "$keys/groups/$name.pub")"
            done
            printf -- '---\napiVersion: v1\n'
            meta Secret ifp-client-key keys
            printf 'type: Opaque\ndata:\n'
            printf '  client.key: %s\n  client.pub: %s\n' "$(b64 "$keys/client.key")" "$(b64 "$keys/client.pub")"
        } >"$out/secrets.yaml"
    )
    files+=(secrets.yaml)
fi

# volumes INDENT ROLE [GROUP]: the pod's config and keys volumes; the keys
# folder holds what that role reads (docs/SECURITY.md), mode 0400.
volumes() {
    local pad name f
    pad="$(printf '%*s' "$1" '')"
    printf '%s- name: config\n%s  configMap:\n%s    name: ifp-config\n' "$pad" "$pad" "$pad"
    [[ "$curve" != off ]] || return 0
    printf '%s- name: keys\n%s  projected:\n%s    defaultMode: 256 # 0400: ifp refuses a secret key file others may read\n%s    sources:\n' \
        "$pad" "$pad" "$pad" "$pad"
    if [[ "$2" == router ]]; then
        printf '%s      - secret:\n%s          name: ifp-router-key\n%s          items:\n' "$pad" "$pad" "$pad"
        for f in router.key router.pub api_keys; do
            [[ "$f" != api_keys || -e "$keys/api_keys" ]] || continue
            printf '%s            - key: %s\n%s              path: %s\n' "$pad" "$f" "$pad" "$f"
        done
        for f in "$keys"/clients/*.pub; do
            [[ -e "$f" ]] || continue
            printf '%s            - key: clients-%s\n%s              path: clients/%s\n' "$pad" "${f##*/}" "$pad" "${f##*/}"
        done
        for g in "${groups[@]}"; do
            name="${g%% *}"
            printf '%s      - secret:\n%s          name: %s-key\n%s          items:\n' "$pad" "$pad" "${kname[$name]}" "$pad"
            printf '%s            - key: %s.pub\n%s              path: groups/%s.pub\n' "$pad" "$name" "$pad" "$name"
        done
    else
        name="$3"
        printf '%s      - secret:\n%s          name: %s-key\n%s          items:\n' "$pad" "$pad" "${kname[$name]}" "$pad"
        printf '%s            - key: %s.key\n%s              path: groups/%s.key\n' "$pad" "$name" "$pad" "$name"
        printf '%s      - secret:\n%s          name: ifp-router-key\n%s          items:\n' "$pad" "$pad" "$pad"
        printf '%s            - key: router.pub\n%s              path: router.pub\n' "$pad" "$pad"
    fi
}
mounts() {
    local pad
    pad="$(printf '%*s' "$1" '')"
    printf '%s- name: config\n%s  mountPath: %s\n%s  readOnly: true\n' "$pad" "$pad" "$CONF_DIR" "$pad"
    [[ "$curve" == off ]] || printf '%s- name: keys\n%s  mountPath: %s\n%s  readOnly: true\n' "$pad" "$pad" "$KEYS_DIR" "$pad"
}

# router_yaml I: router I's Deployment (one replica: a second would be a
# second router) and Service.
router_yaml() {
    local i="$1" w what="The router"
    [[ -z "${rname[i]}" ]] || what="[router ${rname[i]}] (ifp-router --name ${rname[i]})"
    printf '# %s: one replica (a second would be another router).\napiVersion: apps/v1\n' "$what"
    rmeta Deployment "$i"
    printf 'spec:\n  replicas: 1\n  strategy:\n    type: Recreate\n  selector:\n    matchLabels:\n'
    rlabels 6 "$i"
    printf '  template:\n    metadata:\n      labels:\n'
    rlabels 8 "$i"
    printf '    spec:\n'
    if ((${#rk[@]} > 1)); then
        # the routers on nodes of their own when the cluster has the nodes
        printf '      affinity:\n        podAntiAffinity:\n          preferredDuringSchedulingIgnoredDuringExecution:\n'
        printf '            - weight: 100\n              podAffinityTerm:\n                topologyKey: kubernetes.io/hostname\n'
        printf '                labelSelector:\n                  matchLabels:\n'
        labels 20 router
    fi
    printf '      containers:\n        - name: router\n          image: %s\n' "$(q "$image")"
    printf '          command:\n'
    local argv=("$BIN/ifp-router" --config "$CONF_DIR/router.ini")
    [[ -z "${rname[i]}" ]] || argv+=(--name "${rname[i]}")
    for w in "${argv[@]}"; do printf '            - %s\n' "$(q "$w")"; done
    printf '          env:\n            - name: OPENBLAS_NUM_THREADS\n              value: "1"\n'
    printf '          ports:\n            - name: frontend\n              containerPort: %d\n' "${rfport[i]}"
    printf '            - name: backend\n              containerPort: %d\n' "${rbport[i]}"
    printf '          volumeMounts:\n'
    mounts 12
    printf '      volumes:\n'
    volumes 8 router
    printf -- '---\n# Clients reach the frontend, the groups the backend, at %s.\napiVersion: v1\n' "${rsvc[i]}"
    rmeta Service "$i"
    printf 'spec:\n  selector:\n'
    rlabels 4 "$i"
    printf '  ports:\n'
    printf '    - name: frontend\n      protocol: TCP\n      port: %d\n      targetPort: %d\n' "${rfport[i]}" "${rfport[i]}"
    printf '    - name: backend\n      protocol: TCP\n      port: %d\n      targetPort: %d\n' "${rbport[i]}" "${rbport[i]}"
}
for i in "${!rk[@]}"; do
    f=router.yaml
    [[ -z "${rname[i]}" ]] || f="router-${rname[i]}.yaml"
    router_yaml "$i" >"$out/$f"
    files+=("$f")
done

for g in "${groups[@]}"; do
    name="${g%% *}" stages="${g##* }" k="${kname[${g%% *}]}"
    btl=tcp,self
    ((stages == 1)) && btl=self # one rank: no MPI data between pods
    cmd=(mpirun --allow-run-as-root -np "$stages" --bind-to none --mca btl "$btl"
        --mca btl_tcp_if_include "${g_if[$name]}" --mca oob_tcp_if_include "${g_if[$name]}"
        --mca odls_base_sigkill_timeout 0 -x OPENBLAS_NUM_THREADS=1
        "$BIN/ifp-shard" --config "$CONF_DIR/ifp.ini" --group "$name")
    {
        printf '# [group %s]: %d stage(s), one worker pod each; the launcher runs mpirun.\n' "$name" "$stages"
        printf 'apiVersion: kubeflow.org/v2beta1\n'
        meta MPIJob "$k" shard-group "$k"
        printf 'spec:\n  slotsPerWorker: 1\n  mpiImplementation: OpenMPI\n  sshAuthMountPath: /root/.ssh\n'
        printf '  runPolicy:\n    cleanPodPolicy: Running\n    backoffLimit: 1000 # restarts of the launcher (the group) before the MPIJob fails\n'
        printf '  mpiReplicaSpecs:\n'
        printf '    Launcher:\n      replicas: 1\n      restartPolicy: OnFailure\n      template:\n        metadata:\n          labels:\n'
        labels 12 shard-group "$k"
        printf '        spec:\n          containers:\n            - name: launcher\n              image: %s\n' "$(q "$image")"
        printf '              command:\n'
        for w in "${cmd[@]}"; do printf '                - %s\n' "$(q "$w")"; done
        printf '    Worker:\n      replicas: %d\n      restartPolicy: OnFailure\n      template:\n        metadata:\n          labels:\n' "$stages"
        labels 12 shard-group "$k"
        printf '        spec:\n          containers:\n            - name: worker\n              image: %s\n' "$(q "$image")"
        printf '              command:\n'
        for w in /bin/sh -c 'ssh-keygen -A && exec /usr/sbin/sshd -De'; do printf '                - %s\n' "$(q "$w")"; done
        printf '              volumeMounts:\n'
        mounts 16
        printf '          volumes:\n'
        volumes 12 worker "$name"
    } >"$out/group-$name.yaml"
    files+=("group-$name.yaml")
done

{
    printf '# Who may connect to what (enforced by CNIs that implement NetworkPolicy).\n'
    for i in "${!rk[@]}"; do
        ((i == 0)) || printf -- '---\n'
        printf '# %s: clients on the frontend; the shard groups only on the backend.\napiVersion: networking.k8s.io/v1\n' \
            "$([[ -z "${rname[i]}" ]] && echo "The router" || echo "[router ${rname[i]}]")"
        rmeta NetworkPolicy "$i"
        printf 'spec:\n  podSelector:\n    matchLabels:\n'
        rlabels 6 "$i"
        printf '  policyTypes:\n    - Ingress\n  ingress:\n'
        printf '    - ports:\n        - protocol: TCP\n          port: %d\n' "${rfport[i]}"
        printf '    - from:\n        - podSelector:\n            matchLabels:\n'
        labels 14 shard-group
        printf '      ports:\n        - protocol: TCP\n          port: %d\n' "${rbport[i]}"
    done
    for g in "${groups[@]}"; do
        k="${kname[${g%% *}]}"
        printf -- '---\n# [group %s]: its pods (ssh, MPI: not encrypted) take connections from each other only.\n' "${g%% *}"
        printf 'apiVersion: networking.k8s.io/v1\n'
        meta NetworkPolicy "$k-mpi" shard-group "$k"
        printf 'spec:\n  podSelector:\n    matchLabels:\n      ifp/group: %s\n' "$k"
        printf '  policyTypes:\n    - Ingress\n  ingress:\n    - from:\n        - podSelector:\n            matchLabels:\n'
        printf '              ifp/group: %s\n' "$k"
    done
} >"$out/network-policy.yaml"
files+=(network-policy.yaml)

{
    printf '# kubectl apply -k %s\napiVersion: kustomize.config.k8s.io/v1beta1\nkind: Kustomization\nresources:\n' "$out"
    for f in "${files[@]}"; do printf '  - %s\n' "$f"; done
} >"$out/kustomization.yaml"

printf 'wrote %s: %s\n' "$out" "${files[*]} kustomization.yaml"
for i in "${!rk[@]}"; do
    printf 'router%s: Service %s, frontend port %s, backend port %s\n' "${rname[i]:+ ${rname[i]}}" "${rsvc[i]}" \
        "${rfport[i]}" "${rbport[i]}"
done
printf '%d MPIJob(s): %s\n' "${#groups[@]}" "$(for g in "${groups[@]}"; do printf '%s(%s) ' "${kname[${g%% *}]}" "${g##* }"; done)"
list=""
for i in "${!rk[@]}"; do list+="${list:+,}tcp://${rsvc[i]}:${rfport[i]}"; done
printf 'clients in the cluster: ifp client --router %s\n' "$list"
if [[ "$curve" == off ]]; then
    printf 'WARNING: [security] curve = off: no keys; every ZeroMQ link is plain\n'
elif [[ -n "$keys_from" ]]; then
    printf 'keys from %s; %s/secrets.yaml holds the secret keys: keep it private\n' "$keys" "$out"
else
    printf 'new keys; %s/secrets.yaml is their only copy and holds the secret keys: keep it private\n' "$out"
fi
