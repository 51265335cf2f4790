// tests/http/openai_e2e.mjs — the official OpenAI client (npm `openai`, 4.x)
// against ifp-router's HTTP API, as a user's program would call it; run by
// tests/test_http.sh against a cluster it started (never on its own).
//
//   completions and chat, non-streaming and streaming, masks dense and input,
//   temperature 0 and 0.8 with a fixed seed: each answer equals, token for
//   token, `ifp client --json` with the same prompt (chat: the instruct
//   template's rendering, router/oai_chat.c), mask, seed and sampling
//   parameters (text, usage, finish_reason, ifp.mask and the group that
//   served it: a math question's input mask is served by the cluster group);
//   models.list() / retrieve(); an unknown model -> NotFoundError (404); a
//   wrong key -> AuthenticationError (401); a stream aborted by the client
//   (AbortController after its first chunk) ends at the router as
//   status=client_gone or cancelled (its request log line, found by id).
//
// Environment (all required): IFP_HTTP_BASE (http://127.0.0.1:PORT/v1),
// IFP_API_KEY, IFP_BIN (build/tools/ifp), IFP_ROUTER (the ZeroMQ frontend),
// IFP_KEYS (the keys folder for ifp client), IFP_ROUTER_LOG (router.log).
// Prints one line per check ("ok ..." / "FAIL ..."); exits 1 if any failed.
import { execFileSync } from "node:child_process";
import { readFileSync } from "node:fs";
import OpenAI from "openai";

const env = (name) => {
  const v = process.env[name];
  if (!v) {
    console.error(`openai_e2e: ${name} is not set (run tests/test_http.sh)`);
    process.exit(2);
  }
  return v;
};
const BASE = env("IFP_HTTP_BASE");
const KEY = env("IFP_API_KEY");
const IFP = env("IFP_BIN");
const ROUTER = env("IFP_ROUTER");
const KEYS = env("IFP_KEYS");
const ROUTER_LOG = env("IFP_ROUTER_LOG");

let failures = 0;
let passes = 0;
const ok = (what) => {
  passes++;
  console.log(`ok   ${what}`);
};
const fail = (what, detail) => {
  failures++;
  console.log(`FAIL ${what}${detail ? `\n     ${detail.replaceAll("\n", "\n     ")}` : ""}`);
};
const show = (v) => JSON.stringify(v);
const short = (text) => show(text.length > 36 ? `${text.slice(0, 33)}...` : text);
// check(what, cond, detail): one assertion
const check = (what, cond, detail) => (cond ? ok(what) : fail(what, detail));
const sleep = (ms) => new Promise((r) => setTimeout(r, ms));

// maxRetries 0: the client would otherwise retry 429/5xx and hide them
const client = new OpenAI({ baseURL: BASE, apiKey: KEY, maxRetries: 0, timeout: 120000 });

// ---------------------------------------------------------------- the reference

// `ifp client --json` for the same request through the ZeroMQ frontend: the
// parsed object (text, tokens, finish_reason, group, ...).
function reference({ prompt, n, temp, seed, topP, topK, mask }) {
  const args = ["client", "--router", ROUTER, "--keys", KEYS, "--prompt", prompt, "-n", String(n),
    "--temp", String(temp), "--seed", String(seed), "--top-p", String(topP), "--top-k", String(topK),
    "--mask", mask, "--json", "--timeout-ms", "60000"];
  let out;
  try {
    out = execFileSync(IFP, args, { encoding: "utf8", stdio: ["ignore", "pipe", "pipe"], timeout: 90000 });
  } catch (e) {
    throw new Error(`ifp ${args.map((a) => show(a)).join(" ")} failed: ${e.stderr || e.message}`);
  }
  return JSON.parse(out);
}

// ifp client's finish ("eos", "stop", "length") as the OpenAI finish_reason
const oaiFinish = (f) => (f === "eos" || f === "stop" ? "stop" : f);

// ---------------------------------------------------------------- equality

const N = 24; // new tokens per request: long enough to differ, short enough to be quick
const SEED = 4242;
// the sampling settings compared: greedy, and sampled with ifp client's
// defaults (top_p 0.95, top_k 40: top_k is the API's ifp extension)
const SAMPLING = [
  { temp: 0, topP: 1, topK: 0 },
  { temp: 0.8, topP: 0.95, topK: 40 },
];
const MASKS = ["dense", "input"];
// (the math question's input mask is covered by cluster 0's union: the
// cluster group serves it, from compacted weights)
const MATH = "Question: Terry eats 2 yogurts a day.  They are currently on sale at 4 yogurts for $5.00.  How much " +
  "does he spend on yogurt over 30 days?\nAnswer:";
const COMPLETION_PROMPTS = ["Question: What is 2+3?\nAnswer:", "Once upon a time", MATH];
// chat messages and their rendering by the instruct template (docs/HTTP.md)
const CHATS = [
  { messages: [{ role: "user", content: "Write a short story about a cat." }],
    prompt: "Instruction: Write a short story about a cat.\nResponse:" },
  { messages: [{ role: "system", content: "Translate to French." }, { role: "user", content: "the red house" }],
    prompt: "Instruction: Translate to French.\nInput: the red house\nResponse:" },
];

// the request body fields shared by both endpoints (ifp extensions included)
const body = (s, mask) => ({
  model: "ifp-mix", max_tokens: N, temperature: s.temp, top_p: s.topP, top_k: s.topK, seed: SEED,
  ifp_mask: mask,
});

// Compares one answer (text, token counts, finish, ifp object) with its
// reference: one check, its failure showing both sides.
function compare(what, got, ref, mask) {
  const want = { text: ref.text, completion_tokens: ref.tokens.length, prompt_tokens: ref.prompt_tokens.length,
    total_tokens: ref.prompt_tokens.length + ref.tokens.length, finish_reason: oaiFinish(ref.finish_reason),
    mask, coverage: 1, group: ref.group };
  const have = { text: got.text, completion_tokens: got.usage?.completion_tokens,
    prompt_tokens: got.usage?.prompt_tokens, total_tokens: got.usage?.total_tokens, finish_reason: got.finish,
    mask: got.ifp?.mask, coverage: got.ifp?.coverage, group: got.ifp?.group };
  const same = Object.keys(want).every((k) => have[k] === want[k]) && (mask !== "dense" || got.ifp?.dense === true);
  check(`${what}: = ifp client (${want.completion_tokens} tokens, ${want.finish_reason}, group ${want.group})`, same,
    `http:       ${show(have)} ifp ${show(got.ifp)}\nifp client: ${show(want)} tokens ${show(ref.tokens)}`);
}

async function completionPlain(s, mask, prompt) {
  const r = await client.completions.create({ ...body(s, mask), prompt });
  const c = r.choices[0];
  if (r.object !== "text_completion" || !r.id.startsWith("cmpl-") || r.choices.length !== 1)
    fail("completions: the response's object, id and choices", show(r));
  return { text: c.text, finish: c.finish_reason, usage: r.usage, ifp: r.ifp };
}

async function completionStream(s, mask, prompt) {
  const stream = await client.completions.create({ ...body(s, mask), prompt, stream: true });
  let text = "", finish = null, usage = null, ifp = null, chunks = 0, late = 0;
  for await (const ch of stream) {
    chunks++;
    if (finish !== null) late++; // nothing may follow the final chunk
    const c = ch.choices[0];
    text += c.text;
    if (c.finish_reason) [finish, usage, ifp] = [c.finish_reason, ch.usage, ch.ifp];
  }
  if (!chunks || late) fail("completions stream: chunks, the final one last", `${chunks} chunks, ${late} after the final`);
  return { text, finish, usage, ifp };
}

async function chatPlain(s, mask, messages) {
  const r = await client.chat.completions.create({ ...body(s, mask), messages });
  const c = r.choices[0];
  if (r.object !== "chat.completion" || !r.id.startsWith("chatcmpl-") || c.message.role !== "assistant")
    fail("chat: the response's object, id and message role", show(r));
  return { text: c.message.content, finish: c.finish_reason, usage: r.usage, ifp: r.ifp };
}

async function chatStream(s, mask, messages) {
  const stream = await client.chat.completions.create({ ...body(s, mask), messages, stream: true });
  let text = "", finish = null, usage = null, ifp = null, chunks = 0, role = null;
  for await (const ch of stream) {
    if (chunks++ === 0) role = ch.choices[0].delta.role;
    const c = ch.choices[0];
    text += c.delta.content ?? "";
    if (c.finish_reason) [finish, usage, ifp] = [c.finish_reason, ch.usage, ch.ifp];
  }
  if (role !== "assistant") fail("chat stream: the first chunk's delta.role is assistant", `got ${show(role)}`);
  return { text, finish, usage, ifp };
}

async function equalityChecks() {
  let n = 0;
  for (const s of SAMPLING)
    for (const mask of MASKS) {
      const tag = `temp ${s.temp}${s.temp ? ` seed ${SEED}` : ""}, mask ${mask}`;
      for (const prompt of COMPLETION_PROMPTS) {
        const ref = reference({ prompt, n: N, temp: s.temp, seed: SEED, topP: s.topP, topK: s.topK, mask });
        if (prompt === MATH && mask === "input")
          check(`the math question (mask input) is served by the cluster group gc (${tag})`, ref.group === "gc",
            `ifp client: group ${ref.group}, cluster ${ref.cluster}, coverage ${ref.coverage}`);
        compare(`completions ${short(prompt)} (${tag})`, await completionPlain(s, mask, prompt), ref, mask);
        compare(`completions stream ${short(prompt)} (${tag})`, await completionStream(s, mask, prompt), ref, mask);
        n += 2;
      }
      for (const chat of CHATS) {
        const ref = reference({ prompt: chat.prompt, n: N, temp: s.temp, seed: SEED, topP: s.topP, topK: s.topK, mask });
        const what = `chat ${show(chat.messages.map((m) => m.content))}`;
        compare(`${what} (${tag})`, await chatPlain(s, mask, chat.messages), ref, mask);
        compare(`${what} stream (${tag})`, await chatStream(s, mask, chat.messages), ref, mask);
        n += 2;
      }
    }
  // the seed matters: a sampled answer with another seed differs from the fixed one
  // (on one of the prompts at least; a tiny model may agree on one)
  const s = SAMPLING[1];
  let differs = false;
  for (const prompt of COMPLETION_PROMPTS) {
    const a = await completionPlain(s, "dense", prompt);
    const b = await client.completions.create({ ...body(s, "dense"), seed: SEED + 1, prompt });
    differs ||= a.text !== b.choices[0].text;
  }
  check("temperature 0.8: another seed gives another answer (the seed reaches the sampler)", differs);
  return n;
}

// ---------------------------------------------------------------- the rest

async function expectError(what, Klass, status, fn) {
  try {
    const r = await fn();
    fail(what, `no error: ${show(r).slice(0, 300)}`);
  } catch (e) {
    check(what, e instanceof Klass && e.status === status,
      `got ${e?.constructor?.name} status ${e?.status}: ${e?.message}`);
    return e;
  }
}

async function modelChecks() {
  const ids = [];
  for await (const m of client.models.list()) ids.push(m.id);
  check("models.list() returns ifp-mix", ids.includes("ifp-mix"), `ids ${show(ids)}`);
  const m = await client.models.retrieve("ifp-mix");
  check("models.retrieve('ifp-mix')", m.id === "ifp-mix" && m.object === "model", show(m));
  await expectError("models.retrieve('gpt-4o') -> NotFoundError (404)", OpenAI.NotFoundError, 404,
    () => client.models.retrieve("gpt-4o"));
  const e = await expectError("completions with model 'gpt-4o' -> NotFoundError (404)", OpenAI.NotFoundError, 404,
    () => client.completions.create({ model: "gpt-4o", prompt: "hi", max_tokens: 2 }));
  if (e) check("  its error names the model (param 'model', code model_not_found)",
    e.param === "model" && e.code === "model_not_found", `param ${e.param} code ${e.code}`);
  await expectError("chat with model 'gpt-4o' -> NotFoundError (404)", OpenAI.NotFoundError, 404,
    () => client.chat.completions.create({ model: "gpt-4o", messages: [{ role: "user", content: "hi" }] }));
}

async function authChecks() {
  const wrong = new OpenAI({ baseURL: BASE, apiKey: "ifp-" + "x".repeat(40), maxRetries: 0 });
  await expectError("a wrong API key -> AuthenticationError (401): completions", OpenAI.AuthenticationError, 401,
    () => wrong.completions.create({ model: "ifp-mix", prompt: "hi", max_tokens: 2 }));
  await expectError("a wrong API key -> AuthenticationError (401): chat stream", OpenAI.AuthenticationError, 401,
    () => wrong.chat.completions.create({ model: "ifp-mix", messages: [{ role: "user", content: "hi" }],
      stream: true }));
  await expectError("a wrong API key -> AuthenticationError (401): models.list()", OpenAI.AuthenticationError, 401,
    () => wrong.models.list());
}

// The request log line of the request with id, or null: the router writes
// one when a request ends (router/reqlog.c).
function logLine(id) {
  const lines = readFileSync(ROUTER_LOG, "utf8").split("\n");
  return lines.find((l) => l.includes(" msg=request ") && l.includes(`id="${id}"`)) ?? null;
}

// A stream the client aborts after its first chunk: its request ends at
// the router as client_gone (or cancelled), not ok.  Returns the status in
// the request's log line (null when none appeared within 20 s).
async function abortOnce(kind, seed) {
  const ac = new AbortController();
  const req = { model: "ifp-mix", max_tokens: 250, temperature: 0.8, seed, ignore_eos: true, ifp_mask: "dense",
    stream: true };
  const stream = kind === "chat"
    ? await client.chat.completions.create({ ...req, messages: [{ role: "user", content: "Tell me a long story." }] },
      { signal: ac.signal })
    : await client.completions.create({ ...req, prompt: "Once upon a time" }, { signal: ac.signal });
  let id = null, chunks = 0, aborted = false;
  try {
    for await (const ch of stream) {
      chunks++;
      id ??= ch.id;
      ac.abort();
    }
  } catch (e) {
    aborted = e instanceof OpenAI.APIUserAbortError || e?.name === "AbortError";
    if (!aborted) throw e;
  }
  check(`${kind} stream aborted after its first chunk (the client saw the abort)`, id && (aborted || chunks >= 1),
    `id ${id}, ${chunks} chunks, aborted ${aborted}`);
  // the router's log line for that id: at most 20 s (200 x 0.1 s) for it to appear
  let line = null;
  for (let i = 0; i < 200 && !(line = logLine(id)); i++) await sleep(100);
  const status = line?.match(/ status=(\S+)/)?.[1] ?? null;
  const done = line?.match(/ completion_tokens=(\d+)/)?.[1];
  console.log(`     ${id}: ${line ? `status=${status}, ${done} of 250 tokens generated` : "no request log line"}`);
  return { id, line, status };
}

// At most 3 tries: one whose 250 tokens were all generated before the
// cancel arrived (status ok: a stalled machine) is tried again.
async function abortCheck(kind) {
  let r;
  for (let attempt = 0; attempt < 3; attempt++) {
    r = await abortOnce(kind, 7 + attempt);
    if (r.status !== "ok") break;
  }
  check(`${kind} stream aborted: the router ended request ${r.id} as client_gone or cancelled`,
    r.status === "client_gone" || r.status === "cancelled",
    r.line ? `its log line: ${r.line}` : `no request log line for id="${r.id}" in ${ROUTER_LOG}`);
}

// ---------------------------------------------------------------- main

const t0 = Date.now();
try {
  await modelChecks();
  await authChecks();
  const n = await equalityChecks();
  console.log(`     ${n} answers compared with ifp client token for token`);
  await abortCheck("completions");
  await abortCheck("chat");
} catch (e) {
  fail("unexpected exception", e?.stack ?? String(e));
}
console.log(`openai_e2e: ${passes} passed, ${failures} failed in ${((Date.now() - t0) / 1000).toFixed(1)} s`);
process.exit(failures ? 1 : 0);
