#!/usr/bin/env bash
# tests/deploy_yaml.sh — sourced by tests/test_deploy_manifests.sh: a reader
# for the YAML deploy/k8s/generate.sh writes, and the checks on what it
# reads (they call the test's fail and ok).
# shellcheck shell=bash

# ------------------------------------------------------------------ YAML
# A reader for the YAML generate.sh writes (block mappings and sequences,
# plain and double-quoted scalars, `|` literals, comments, `---`): one line
# "KIND/NAME<TAB>PATH<TAB>VALUE" per scalar, PATH like
# spec.template.spec.containers[0].command[2], VALUE with \ newline tab as
# \\ \n \t.  It refuses what it does not know; it is not a general parser.
# shellcheck disable=SC2016 # an awk program: its $ are awk's
YAML_AWK='
function esc(s) { gsub(/\\/, "\\\\", s); gsub(/\n/, "\\n", s); gsub(/\t/, "\\t", s); return s }
function bad(msg) { printf "%s:%d: %s: %s\n", FILENAME, FNR, msg, $0 > "/dev/stderr"; failed = 1; exit 1 }
function scalar(v,   out, i, c) {
    if (substr(v, 1, 1) == "\"") {
        out = ""
        for (i = 2; i <= length(v); i++) {
            c = substr(v, i, 1)
            if (c == "\\") { i++; c = substr(v, i, 1); out = out (c == "n" ? "\n" : c == "t" ? "\t" : c); continue }
            if (c == "\"") {
                if (substr(v, i + 1) !~ /^[[:space:]]*(#.*)?$/) bad("text after a quoted scalar")
                return out
            }
            out = out c
        }
        bad("unterminated double-quoted scalar")
    }
    if (v ~ /^[\x27{}[\]&*!|>%@`]/ && v != "{}" && v != "[]") bad("a scalar this reader does not take")
    sub(/[[:space:]]+#.*$/, "", v)
    sub(/[[:space:]]+$/, "", v)
    if (v ~ /: |^- /) bad("a plain scalar that looks like a key or an item")
    return v
}
function put(p, v) { np++; bp[np] = p; bv[np] = v; if (p == "kind") kind = v; if (p == "metadata.name") name = v }
function end_block() {
    if (!inblock) return
    sub(/\n+$/, "\n", blk)
    put(blkpath, blk)
    inblock = 0
}
function flush(   i, id) {
    end_block()
    if (pending != "") { put(pending, ""); pending = "" }
    id = (kind == "" ? "?" : kind) "/" (name == "" ? "-" : name)
    for (i = 1; i <= np; i++) print id "\t" bp[i] "\t" esc(bv[i])
    np = 0; kind = name = ""; depth = 0
}
function join(p, k) { return p == "" ? k : p "." k }
function entry(c, n,   k, v) {
    if (!match(c, /^[^"\x27 ][^:]*:([[:space:]]|$)/)) bad("expected key: value")
    k = substr(c, 1, RLENGTH); sub(/:[[:space:]]*$/, "", k)
    v = substr(c, RLENGTH + 1); sub(/^[[:space:]]+/, "", v)
    if (v == "" || v ~ /^#/) { pending = join(path[depth], k); pend_ind = n; return }
    if (v ~ /^\|[[:space:]]*(#.*)?$/) { inblock = 1; blk = ""; blkpath = join(path[depth], k); blk_ind = n; blk_cut = -1; return }
    put(join(path[depth], k), scalar(v))
}
FNR == 1 && NR > 1 { flush() }
{
    line = $0
    if (inblock) {
        if (line ~ /^[[:space:]]*$/) { blk = blk "\n"; next }
        match(line, /^ */)
        if (RLENGTH > blk_ind) {
            if (blk_cut < 0) blk_cut = RLENGTH
            if (RLENGTH < blk_cut) bad("a literal line less indented than its first line")
            blk = blk substr(line, blk_cut + 1) "\n"
            next
        }
        end_block()
    }
    if (line ~ /^---[[:space:]]*$/) { flush(); next }
    if (line ~ /^[[:space:]]*(#.*)?$/) next
    if (line ~ /^ *\t/) bad("a tab in the indentation")
    match(line, /^ */); n = RLENGTH; c = substr(line, n + 1)
    if (pending != "") {
        if (n > pend_ind || (n == pend_ind && c ~ /^- /)) {
            depth++; ind[depth] = n; path[depth] = pending; seq[depth] = (c ~ /^-( |$)/); idx[depth] = -1
        } else put(pending, "")
        pending = ""
    }
    while (depth > 0 && ind[depth] > n) depth--
    if (depth > 0 && ind[depth] != n) bad("an indentation that matches no open level")
    if (depth == 0 && n != 0) bad("an indented line at the top level")
    if (c ~ /^-( |$)/) {
        if (!seq[depth]) bad("a sequence item in a mapping")
        idx[depth]++
        c = substr(c, 3); sub(/^ +/, "", c)
        p = path[depth] "[" idx[depth] "]"
        if (c ~ /^[^"\x27 ][^:]*:([[:space:]]|$)/) {
            depth++; ind[depth] = n + 2; path[depth] = p; seq[depth] = 0
            entry(c, n + 2)
        } else put(p, scalar(c))
        next
    }
    if (seq[depth]) bad("a mapping entry in a sequence")
    entry(c, n)
}
END { if (!failed) flush() }'

# The same flattening by PyYAML, and the types Kubernetes wants: integers for
# counts, ports and modes; strings for every command word.
YAML_PY='
import sys, yaml
INTS = {"replicas", "containerPort", "port", "targetPort", "slotsPerWorker", "backoffLimit", "defaultMode", "weight"}
BOOLS = {"readOnly"}
def esc(s): return s.replace("\\", "\\\\").replace("\n", "\\n").replace("\t", "\\t")
def walk(p, v, key, out):
    if isinstance(v, dict):
        for k, x in v.items(): walk(p + "." + k if p else k, x, k, out)
    elif isinstance(v, list):
        for i, x in enumerate(v): walk("%s[%d]" % (p, i), x, key, out)
    else:
        want = int if key in INTS else bool if key in BOOLS else str
        if type(v) is not want: sys.exit("%s: %r is not a %s" % (p, v, want.__name__))
        out.append((p, esc(str(v).lower() if want is bool else str(v))))
for f in sys.argv[1:]:
    for d in yaml.safe_load_all(open(f)):
        out = []
        walk("", d, "", out)
        i = "%s/%s" % (d.get("kind", "?"), (d.get("metadata") or {}).get("name", "-"))
        for p, v in out: print("%s\t%s\t%s" % (i, p, v))
'
have_pyyaml=0
if command -v python3 >/dev/null && python3 -c 'import yaml' 2>/dev/null; then have_pyyaml=1; fi

# flatten OUTDIR: every manifest of OUTDIR as $OUTDIR.tsv (our reader; checked
# against PyYAML when there is one).
flatten() {
    local dir="$1" files
    files=("$dir"/*.yaml)
    LC_ALL=C awk "$YAML_AWK" "${files[@]}" >"$dir.tsv" || fail "$dir: a manifest the YAML reader refuses (above)"
    ok
    if ((have_pyyaml)); then
        python3 -c "$YAML_PY" "${files[@]}" >"$dir.py.tsv" || fail "$dir: PyYAML: a manifest with a wrong type or bad YAML (above)"
        diff "$dir.tsv" "$dir.py.tsv" >&2 || fail "$dir: PyYAML reads the manifests differently from the test's reader"
        ok
    fi
}
# y TSV ID PATH: the value (unescaped), or "<none>".
y() {
    LC_ALL=C awk -F'\t' -v id="$2" -v p="$3" '
        $1 == id && $2 == p {
            v = $3; out = ""
            for (i = 1; i <= length(v); i++) {
                c = substr(v, i, 1)
                if (c == "\\") { i++; c = substr(v, i, 1); c = c == "n" ? "\n" : c == "t" ? "\t" : c }
                out = out c
            }
            printf "%s", out; found = 1; exit
        }
        END { if (!found) printf "<none>" }' "$1"
}
# ylist TSV ID PATH: the items of the sequence PATH, one a line.
ylist() {
    local i=0 v
    while v="$(y "$1" "$2" "$3[$i]")" && [[ "$v" != "<none>" ]]; do
        printf '%s\n' "$v"
        i=$((i + 1))
    done
}
# after WORD LIST...: the word that follows WORD in LIST.
after() {
    local want="$1" prev=""
    shift
    for w in "$@"; do
        [[ "$prev" == "$want" ]] && {
            printf '%s' "$w"
            return 0
        }
        prev="$w"
    done
    printf '<none>'
}

# ini_agree ORIG NEW EXPECTED...: NEW has the same groups as ORIG, each
# EXPECTED ("SECTION<TAB>KEY<TAB>VALUE") as its value, every other key of
# ORIG with ORIG's value (the last one given), and no other key.
ini_agree() {
    local orig="$1" new="$2" s k v x
    shift 2
    local -A o=() n=() e=()
    while IFS=$'\t' read -r s k v; do o["$s"$'\t'"$k"]="$v"; done < <(ifp_ini_dump "$orig")
    while IFS=$'\t' read -r s k v; do n["$s"$'\t'"$k"]="$v"; done < <(ifp_ini_dump "$new")
    for x in "$@"; do e["${x%$'\t'*}"]="${x##*$'\t'}"; done
    expect_eq "$new: the groups" "$(ifp_ini_groups "$new")" "$(ifp_ini_groups "$orig")"
    for x in "${!e[@]}"; do expect_eq "$new: [${x%$'\t'*}] ${x#*$'\t'}" "${n[$x]-<missing>}" "${e[$x]}"; done
    for x in "${!o[@]}"; do
        [[ -n "${e[$x]+set}" ]] || expect_eq "$new: [${x%$'\t'*}] ${x#*$'\t'} (unchanged)" "${n[$x]-<missing>}" "${o[$x]}"
    done
    for x in "${!n[@]}"; do
        [[ -n "${e[$x]+set}" || -n "${o[$x]+set}" ]] || fail "$new: [${x%$'\t'*}] ${x#*$'\t'} = ${n[$x]}: a key the config does not have"
    done
}

# z85_file WHAT TEXT: TEXT is a key file: '#' comments and exactly one line
# of 40 Z85 characters.
z85_file() {
    local keys
    keys="$(grep -v '^#' <<<"$2" | grep -v '^$' || true)"
    [[ "$(wc -l <<<"$keys")" == 1 ]] && ifp_is_z85_key "$keys" || fail "$1: not one Z85 key: $2"
    ok
}
