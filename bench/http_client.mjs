// bench/http_client.mjs — the HTTP side of bench/run_http.sh: POST
// /v1/completions to ifp-router's HTTP API and time the answers from inside
// this process, as `ifp client --json` times the ZeroMQ side: the clock
// starts when a request is sent on a connection already open, so neither
// side counts its process start or its connection set-up.  Node's own http
// module, no packages.
//
//   node bench/http_client.mjs --url http://127.0.0.1:PORT --key KEY --prompt TEXT -n N [--timeout-ms T]
//
// It opens 8 kept-alive connections (8 GET /health at once), then reads
// commands from stdin, one a line, and answers each with one line of JSON
// on stdout ({"error": "..."} when it failed), so that run_http.sh can
// interleave its requests with `ifp client` runs while this process stays
// warm (no JIT or connection set-up inside the timings):
//
//   stream     one request, "stream": true:
//              {"id", "completion_tokens", "finish_reason", "hdr_ms", "ttft_ms", "last_ms",
//               "done_ms", "total_ms", "chunks", "text_chunks", "client_ms"}
//              hdr_ms: the response headers; ttft_ms: the first `data:` event with text;
//              last_ms: the last event with text; done_ms: `data: [DONE]` (where an SDK
//              stops reading); total_ms: the end of the body (the chunked encoding's
//              last chunk), all from the send; client_ms: time spent in this process's
//              response handlers (SSE splitting, JSON.parse: the client's own cost)
//   plain      one request, "stream": false: total_ms is the whole JSON body
//              (ttft_ms = last_ms = done_ms = total_ms)
//   load K C   K streaming requests, C in flight (C <= 8): ifp client's load summary,
//              {"requests", "ok", "failed", "concurrency", "completion_tokens", "wall_s",
//               "tokens_per_s", "ttft_ms_p50", "ttft_ms_p95", "client_cpu_ms"} (p50: the
//              lower median, as ifp client's; client_cpu_ms: this process's CPU meanwhile)
//   health R   R GET /health one after another: {"health_ms": [...]}, the round trip
//              of this client, the gateway and the router's loop (no model)
//
// Every request is greedy with "ignore_eos": true and "ifp_mask": "dense", so
// every answer has exactly N tokens (a shorter one is an error); each is
// given up after T ms (default 60000).  stdin's end ends the process.
import http from "node:http";
import { performance } from "node:perf_hooks";
import readline from "node:readline";

const MAX_CONC = 8;

function die(msg) {
  console.error(`http_client: ${msg}`);
  process.exit(2);
}
function parseArgs(argv) {
  const a = { n: 64, timeoutMs: 60000 };
  for (let i = 2; i < argv.length; i++) {
    const k = argv[i];
    const v = () => (i + 1 < argv.length ? argv[++i] : die(`${k} needs a value`));
    if (k === "--url") a.url = v();
    else if (k === "--key") a.key = v();
    else if (k === "--prompt") a.prompt = v();
    else if (k === "-n") a.n = Number(v());
    else if (k === "--timeout-ms") a.timeoutMs = Number(v());
    else die(`unknown argument ${k}`);
  }
  if (!a.url || a.prompt === undefined) die("--url and --prompt are required");
  for (const k of ["n", "timeoutMs"]) if (!Number.isInteger(a[k]) || a[k] < 1) die(`${k}: a positive integer, got ${a[k]}`);
  return a;
}

const args = parseArgs(process.argv);
const target = new URL(args.url);
const agent = new http.Agent({ keepAlive: true, maxSockets: MAX_CONC, maxFreeSockets: MAX_CONC });
const base = { host: target.hostname, port: target.port, agent };
let clientMs = 0; // time inside the response handlers since the caller reset it

// GET /health: its round trip in ms.
function health() {
  return new Promise((resolve, reject) => {
    const t0 = performance.now();
    const req = http.request({ ...base, method: "GET", path: "/health" }, (res) => {
      res.resume();
      res.on("end", () => (res.statusCode === 200 ? resolve(performance.now() - t0) : reject(new Error(`/health: HTTP ${res.statusCode}`))));
    });
    req.setTimeout(args.timeoutMs, () => req.destroy(new Error("/health: no answer")));
    req.on("error", reject);
    req.end();
  });
}

// One completion: its timings (see the header).
function completion(stream) {
  const body = JSON.stringify({
    model: "ifp-mix",
    prompt: args.prompt,
    max_tokens: args.n,
    temperature: 0,
    ignore_eos: true,
    ifp_mask: "dense",
    stream,
  });
  const headers = { "Content-Type": "application/json", "Content-Length": Buffer.byteLength(body) };
  if (args.key) headers.Authorization = `Bearer ${args.key}`;
  return new Promise((resolve, reject) => {
    const r = { id: "", completion_tokens: 0, finish_reason: null, hdr_ms: 0, ttft_ms: 0, last_ms: 0, done_ms: 0, total_ms: 0, chunks: 0, text_chunks: 0 };
    let buf = "";
    let done = false;
    const t0 = performance.now();
    const req = http.request({ ...base, method: "POST", path: "/v1/completions", headers }, (res) => {
      r.hdr_ms = performance.now() - t0;
      res.setEncoding("utf8");
      if (res.statusCode !== 200) {
        res.on("data", (d) => (buf += d));
        res.on("end", () => reject(new Error(`HTTP ${res.statusCode}: ${buf.slice(0, 300)}`)));
        return;
      }
      const onEvent = (ev, now) => { // `data: {json}` or `data: [DONE]`
        if (!ev.startsWith("data: ")) return;
        const data = ev.slice(6);
        if (data === "[DONE]") {
          r.done_ms = now - t0;
          return void (done = true);
        }
        const j = JSON.parse(data);
        if (j.error) throw new Error(`stream error: ${JSON.stringify(j.error)}`);
        r.chunks++;
        r.id = j.id;
        const c = j.choices && j.choices[0];
        if (c && c.text) {
          r.text_chunks++;
          if (!r.ttft_ms) r.ttft_ms = now - t0;
          r.last_ms = now - t0;
        }
        if (c && c.finish_reason) r.finish_reason = c.finish_reason;
        if (j.usage) r.completion_tokens = j.usage.completion_tokens;
      };
      res.on("data", (d) => {
        const now = performance.now();
        buf += d;
        try {
          for (let k; stream && (k = buf.indexOf("\n\n")) >= 0; buf = buf.slice(k + 2)) onEvent(buf.slice(0, k), now);
        } catch (e) {
          req.destroy(e);
        }
        clientMs += performance.now() - now;
      });
      res.on("end", () => {
        const now = performance.now();
        r.total_ms = now - t0;
        try {
          if (!stream) {
            const j = JSON.parse(buf);
            r.id = j.id;
            r.completion_tokens = j.usage.completion_tokens;
            r.finish_reason = j.choices[0].finish_reason;
            r.ttft_ms = r.last_ms = r.done_ms = r.total_ms;
            r.chunks = r.text_chunks = 1;
          } else if (!done) {
            throw new Error("the stream ended without data: [DONE]");
          }
          if (r.completion_tokens !== args.n) throw new Error(`${r.completion_tokens} tokens, expected ${args.n}`);
        } catch (e) {
          return reject(e);
        }
        clientMs += performance.now() - now;
        resolve(r);
      });
      res.on("error", reject);
    });
    req.setTimeout(args.timeoutMs, () => req.destroy(new Error(`no answer within ${args.timeoutMs} ms`)));
    req.on("error", reject);
    req.end(body);
  });
}

// K streaming requests, C in flight.
async function load(k, c) {
  const ttft = [];
  let sent = 0, ok = 0, tokens = 0;
  const cpu0 = process.cpuUsage();
  const t0 = performance.now();
  const worker = async () => {
    while (sent < k) {
      sent++;
      try {
        const r = await completion(true);
        ok++;
        tokens += r.completion_tokens;
        ttft.push(r.ttft_ms);
      } catch (e) {
        console.error(`http_client: ${e.message}`);
      }
    }
  };
  await Promise.all(Array.from({ length: c }, worker));
  const wall = performance.now() - t0;
  const cpu = process.cpuUsage(cpu0);
  ttft.sort((x, y) => x - y);
  const n = ttft.length;
  return {
    requests: k, ok, failed: k - ok, concurrency: c, completion_tokens: tokens, wall_s: wall / 1e3,
    tokens_per_s: (tokens * 1e3) / wall,
    ttft_ms_p50: n ? ttft[Math.floor((n - 1) / 2)] : 0,
    ttft_ms_p95: n ? ttft[Math.max(0, Math.ceil(0.95 * n) - 1)] : 0,
    client_cpu_ms: (cpu.user + cpu.system) / 1e3,
  };
}

async function run(line) {
  const [cmd, a1, a2] = line.trim().split(/\s+/);
  if (cmd === "stream" || cmd === "plain") {
    clientMs = 0;
    const r = await completion(cmd === "stream");
    r.client_ms = clientMs;
    return r;
  }
  if (cmd === "load") {
    const k = Number(a1), c = Number(a2);
    if (!(k >= 1 && c >= 1 && c <= MAX_CONC)) throw new Error(`load K C: K >= 1, 1 <= C <= ${MAX_CONC}`);
    await Promise.all(Array.from({ length: c }, health)); // C connections open
    return load(k, Math.min(c, k));
  }
  if (cmd === "health") {
    const v = [];
    for (let i = 0; i < Number(a1); i++) v.push(await health());
    return { health_ms: v };
  }
  throw new Error(`unknown command '${line.trim()}' (stream, plain, load K C, health R)`);
}

async function main() {
  await Promise.all(Array.from({ length: MAX_CONC }, health));
  const rl = readline.createInterface({ input: process.stdin, terminal: false });
  for await (const line of rl) {
    if (!line.trim()) continue;
    let out;
    try {
      out = await run(line);
    } catch (e) {
      out = { error: e.message };
    }
    process.stdout.write(JSON.stringify(out) + "\n");
  }
}

main().then(
  () => agent.destroy(),
  (e) => {
    console.error(`http_client: ${e.message}`);
    agent.destroy();
    process.exitCode = 1;
  },
);
