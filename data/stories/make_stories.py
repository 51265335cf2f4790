#!/usr/bin/env python3
"""Builds data/stories/{calib,heldout}.jsonl from a TinyStories text stream.

One-off generator (standard library only); its outputs are committed, so
nothing reads the source at build, run or test time.

    python3 data/stories/make_stories.py SRC.txt data/stories

SRC is a stream of stories whose paragraphs are separated by blank lines
(tinystories_valid_head.txt: the head of the TinyStories validation split).
1. Paragraphs with non-ASCII bytes (mojibake in the source) are dropped.
2. A paragraph opening with "Once upon a time" / "Once there" starts a story.
3. Within a story, consecutive paragraphs are joined (with a blank line) into
   chunks of at least 300 characters; a chunk never spans two stories.
4. prompt = the chunk's first sentence (two if the first is under 25 chars);
   response = " " + the rest.  Chunks whose response is under 150 characters
   are dropped.
5. domain = "opening" if the chunk starts a story, else "middle" (a real
   property of the text, so per-domain rows are meaningful).
6. calib = 400 chunks evenly spaced over the first 75% of the chunks;
   heldout = every chunk of the last 20% (380).  The two regions are
   disjoint, so no story contributes to both.
"""
import json
import re
import sys

OPENERS = ("Once upon a time", "Once there")
SENT_END = re.compile(r'[.!?]["\']?\s+')


def chunks_of(text):
    paras = [p.strip() for p in text.split("\n\n") if p.strip()]
    paras = [p for p in paras if all(ord(c) < 128 for c in p)]
    out, cur, cur_opening = [], [], False
    for p in paras:
        starts_story = p.startswith(OPENERS)
        if starts_story and cur:  # never span two stories
            out.append((cur_opening, "\n\n".join(cur)))
            cur = []
        if not cur:
            cur_opening = starts_story
        cur.append(p)
        if sum(len(x) for x in cur) >= 300:
            out.append((cur_opening, "\n\n".join(cur)))
            cur = []
    return out


def split(chunk):
    pos = 0
    for _ in range(2):
        m = SENT_END.search(chunk, pos)
        if not m:
            return None
        pos = m.end()
        if m.start() + 1 >= 25:
            break
    prompt = chunk[:pos].rstrip()
    response = chunk[pos:].strip()
    if len(response) < 150:
        return None
    return prompt, " " + response


def pick(items, n):
    if len(items) <= n:
        return items
    return [items[i * len(items) // n] for i in range(n)]


def main():
    src, outdir = sys.argv[1], sys.argv[2]
    text = open(src, encoding="utf-8").read()
    rows = []
    for idx, (opening, chunk) in enumerate(chunks_of(text)):
        s = split(chunk)
        if s:
            rows.append({"domain": "opening" if opening else "middle", "prompt": s[0], "response": s[1],
                         "source": "tinystories_valid_head chunk %d" % idx})
    n = len(rows)
    calib = pick(rows[: n * 75 // 100], 400)
    held = rows[n * 80 // 100:]
    for name, data in (("calib", calib), ("heldout", held)):
        with open("%s/%s.jsonl" % (outdir, name), "w", encoding="utf-8") as f:
            for r in data:
                f.write(json.dumps(r, ensure_ascii=False) + "\n")
        doms = {}
        for r in data:
            doms[r["domain"]] = doms.get(r["domain"], 0) + 1
        print(name, len(data), doms, file=sys.stderr)


if __name__ == "__main__":
    main()
