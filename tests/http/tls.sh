# tests/http/tls.sh — sourced by tests/test_http.sh (its helpers, config and
# keys): (f) HTTPS and the loopback rule.  A second router of the same
# deployment (its own ports; no group connects to it) serves the API over
# TLS with a self-signed certificate: curl with that CA gets answers, plain
# HTTP gets none, /health says 503 (no group is live there).  Then a
# non-loopback [http] listen without a certificate: the router refuses to
# start and says why (nothing is bound: no traffic leaves loopback).
# shellcheck shell=bash

step "(f) HTTPS ([http] tls_cert, tls_key) and the loopback rule"
openssl req -x509 -newkey rsa:2048 -nodes -keyout "$tmp/tls.key" -out "$tmp/tls.crt" -days 2 -subj /CN=localhost \
    -addext "subjectAltName=DNS:localhost,IP:127.0.0.1" >/dev/null 2>&1 || fail "openssl could not make a certificate"
chmod 600 "$tmp/tls.key"
free_port && tls_front="$port"
free_port && tls_back="$port"
free_port && tls_port="$port"
sed -e "s|^frontend = .*|frontend = tcp://127.0.0.1:$tls_front|" -e "s|^backend = .*|backend = tcp://127.0.0.1:$tls_back|" \
    -e "s|^listen = .*|listen = 127.0.0.1:$tls_port\ntls_cert = $tmp/tls.crt\ntls_key = $tmp/tls.key|" "$cfg" >"$tmp/tls.ini"
"$build/router/ifp-router" --config "$tmp/tls.ini" >"$tmp/tls-router.log" 2>&1 &
tls_pid=$!
for _ in $(seq 1 100); do
    grep -q "HTTP API on https://127.0.0.1:$tls_port" "$tmp/tls-router.log" && break
    kill -0 "$tls_pid" 2>/dev/null || break
    sleep 0.1
done
check "the router says it serves https://127.0.0.1:$tls_port" grep -q "HTTP API on https://127.0.0.1:$tls_port" "$tmp/tls-router.log"
code="$(curl -s --max-time 10 --cacert "$tmp/tls.crt" "${auth[@]}" -o "$tmp/b" -w '%{http_code}' "https://127.0.0.1:$tls_port/v1/models")"
check "GET /v1/models over HTTPS (curl --cacert): 200 (got $code)" test "$code" == 200
check "  it lists ifp-mix" grep -q '"id":"ifp-mix"' "$tmp/b"
code="$(curl -s --max-time 10 --cacert "$tmp/tls.crt" -o /dev/null -w '%{http_code}' "https://127.0.0.1:$tls_port/v1/models")"
check "  without a key: 401 over HTTPS too (got $code)" test "$code" == 401
code="$(curl -s --max-time 10 --cacert "$tmp/tls.crt" -o /dev/null -w '%{http_code}' "https://127.0.0.1:$tls_port/health")"
check "  /health: 503, no group is live at this router (got $code)" test "$code" == 503
rc=0
curl -s --max-time 10 -o /dev/null "http://127.0.0.1:$tls_port/health" || rc=$?
check "plain HTTP to the HTTPS port gets no answer (curl exit $rc)" test "$rc" -ne 0
rc=0
curl -s --max-time 10 -o /dev/null "https://127.0.0.1:$tls_port/health" || rc=$?
check "HTTPS with a certificate curl does not trust is refused (curl exit $rc)" test "$rc" -ne 0
kill "$tls_pid" 2>/dev/null
wait "$tls_pid" 2>/dev/null || true

sed -e "s|^frontend = .*|frontend = tcp://127.0.0.1:$tls_front|" -e "s|^backend = .*|backend = tcp://127.0.0.1:$tls_back|" \
    -e "s|^listen = .*|listen = 0.0.0.0:$tls_port|" "$cfg" >"$tmp/wild.ini"
rc=0
timeout 60 "$build/router/ifp-router" --config "$tmp/wild.ini" >"$tmp/wild.log" 2>&1 || rc=$?
check "listen = 0.0.0.0 without a certificate: the router does not start (exit $rc)" test "$rc" -ne 0
check "  and says it needs HTTPS or allow_plain" grep -q "a non-loopback address needs HTTPS (tls_cert and tls_key), or allow_plain = on" "$tmp/wild.log"
