"""The claims and verdict rules of every experiment, declared in bench/claims.json before the runs.

Each claim has a hash over its own text and thresholds and the shared verdict words. A run session
records the hashes of its experiment's claims (bench/reproduce.py, in provenance.json), so a
rendered verdict can say when its rule is not the one the runs were recorded under."""
import hashlib
import json

from provenance import ROOT

PATH = ROOT / "bench/claims.json"


def load():
    return json.loads(PATH.read_text())


def _words(data):
    return {k: v for k, v in data["verdict_words"].items() if k not in ("about", "changes")}


def claims(experiment, data=None):
    """The experiment's declared claims by id (empty when it declares none)."""
    data = data or load()
    return {c["id"]: c for c in data["experiments"].get(experiment, {}).get("claims", [])}


def thresholds(experiment, claim_id):
    return claims(experiment)[claim_id]["thresholds"]


def claim_hash(claim, data):
    """Over the claim's own text and thresholds and the shared verdict words (a change to the words
    marks every claim, also those that do not use them: the conservative reading)."""
    text = json.dumps({"claim": claim, "verdict_words": _words(data)}, sort_keys=True)
    return hashlib.sha256(text.encode()).hexdigest()[:12]


def hashes(experiment, data=None):
    """{claim id: hash} for a session record."""
    data = data or load()
    return {cid: claim_hash(c, data) for cid, c in claims(experiment, data).items()}


def status(experiment, claim_id, sessions, data=None):
    """'' when every run session recorded the claim's current rule; otherwise what differs, for
    the rendered verdict. `sessions` are provenance.json's session records."""
    data = data or load()
    declared = claims(experiment, data)
    if claim_id not in declared:
        return "no rule declared in bench/claims.json"
    if not sessions:
        return ""
    now = claim_hash(declared[claim_id], data)
    recorded = [s.get("claims", {}).get(claim_id) for s in sessions]
    if all(h is None for h in recorded):
        # Runs from before rules were hashed: the changes written down by hand are all there is.
        changes = list(declared[claim_id].get("changes", []))
        if declared[claim_id].get("verdicts") == "verdict_words":
            changes += [dict(c, was="shared verdict words: " + c["was"])
                        for c in data["verdict_words"].get("changes", [])]
        if changes:
            return "rule changed after the runs: " + "; ".join(
                f"{c['was']}, then {c['now']} ({c['when']}, commit {c['commit']})" for c in changes)
        return ("rule declared after the runs (they were recorded before bench/claims.json existed, so nothing "
                "shows the rule was fixed before the data)")
    other = sorted({h for h in recorded if h != now and h is not None})
    missing = sum(h is None for h in recorded)
    if other or missing:
        parts = [f"{len([h for h in recorded if h == o])} session(s) under rule {o}" for o in other]
        if missing:
            parts.append(f"{missing} session(s) recorded before the rule was declared")
        return f"rule changed after the runs: now {now}; " + ", ".join(parts)
    return ""


def verdict(experiment, claim_id, text, sessions, data=None):
    """A verdict line's text with the rule's status in front when it is not clean."""
    note = status(experiment, claim_id, sessions, data)
    return f"**{note}**: {text}" if note else text


def rules_section(experiment, sessions, data=None):
    """Markdown: each declared claim with its comparison, rule, thresholds and hash, and the shared
    verdict words' recorded changes."""
    data = data or load()
    declared = claims(experiment, data)
    if not declared:
        return []
    exp = data["experiments"][experiment]
    lines = ["## Claims and rules", "",
             f"Declared in [bench/claims.json](../../../bench/claims.json) ({exp.get('declared', 'no date')}); each "
             "run session records the hash of every rule, and a verdict whose rule changed after its runs says so.", ""]
    if exp.get("rerun"):
        lines += [f"The rerun, declared {exp['rerun']}.", ""]
    for cid, c in declared.items():
        t = ", ".join(f"{k} = {v}" for k, v in c["thresholds"].items())
        note = status(experiment, cid, sessions, data)
        lines.append(f"- `{cid}` (rule {claim_hash(c, data)}{'; ' + note if note else ''}): *{c['seed']}*. "
                     f"Compared: {c['comparison']}. Rule: {c['rule']}{' (' + t + ')' if t else ''}.")
    changes = data["verdict_words"].get("changes", [])
    if changes and any(c["verdicts"] == "verdict_words" for c in declared.values()):
        lines.append("- the shared verdict words changed: " + "; ".join(
            f"{ch['was']}, {ch['now']} ({ch['when']}, commit {ch['commit']})" for ch in changes))
    return lines + [""]


def mark(experiment, lines, sessions, data=None):
    """For renderers that build their verdict lines themselves ('- ... *claim*: verdict ...'): each
    line of a declared claim (found by the claim's `match` text) gets the rule's status after the
    claim, as verdict() would put it."""
    data = data or load()
    declared = [c for c in claims(experiment, data).values() if c.get("match")]
    out = []
    for line in lines:
        hit = next((c for c in declared if line.startswith("- ") and c["match"] in line), None)
        note = status(experiment, hit["id"], sessions, data) if hit else ""
        cut = line.find("*: ", line.find(hit["match"])) if hit else -1
        out.append(line[:cut + 3] + f"**{note}**: " + line[cut + 3:] if note and cut >= 0 else line)
    return out
