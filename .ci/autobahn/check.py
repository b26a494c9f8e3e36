"""Checks an Autobahn|Testsuite fuzzingclient report against the expected results.

Usage: check.py INDEX_JSON EXPECTED_JSON AGENT [--update]

Fails (exit 1) when a case ended with anything but OK, NON-STRICT or
INFORMATIONAL, or when any case's result differs from EXPECTED_JSON (a case
missing, added, or with another behaviour). A case that behaves as expected
but reports another close code is listed as a note: whether the testsuite
sees the server's close frame before it drops the connection depends on
timing on a loaded machine (case 4.1.5 saw none once). --update writes
the results of this run to EXPECTED_JSON instead, for when a change of
behaviour is intended. Runs under Python 2.7 and 3.
"""

from __future__ import print_function

import collections
import json
import os
import sys

ACCEPTED = ("OK", "NON-STRICT", "INFORMATIONAL")
FIELDS = ("behavior", "behaviorClose", "remoteCloseCode")


def case_key(case):
    return [int(part) for part in case.split(".")]


def load_results(index_path, agent):
    with open(index_path) as f:
        index = json.load(f)
    if agent not in index:
        sys.exit("check: no results for agent %r in %s" % (agent, index_path))
    return index[agent]


def summary(results):
    counts = collections.Counter(entry["behavior"] for entry in results.values())
    named = ["OK", "NON-STRICT", "INFORMATIONAL", "FAILED", "UNIMPLEMENTED"]
    parts = ["%d %s" % (counts.pop(name, 0), name) for name in named]
    parts += ["%d %s" % (n, name) for name, n in sorted(counts.items())]
    return ", ".join(parts)


def describe(entry):
    if entry is None:
        return "no result"
    return "%s/%s, close %s" % (entry["behavior"], entry["behaviorClose"], entry["remoteCloseCode"])


def main(argv):
    update = "--update" in argv
    args = [a for a in argv if a != "--update"]
    if len(args) != 3:
        sys.exit(__doc__)
    index_path, expected_path, agent = args
    reports = os.path.dirname(index_path)
    results = load_results(index_path, agent)
    observed = collections.OrderedDict(
        (case, collections.OrderedDict((field, results[case].get(field)) for field in FIELDS))
        for case in sorted(results, key=case_key)
    )

    if update:
        lines = ["  %s: %s" % (json.dumps(case), json.dumps(entry)) for case, entry in observed.items()]
        with open(expected_path, "w") as f:
            f.write("{\n" + ",\n".join(lines) + "\n}\n")
        print("check: wrote %d cases to %s" % (len(observed), expected_path))
        return 0

    with open(expected_path) as f:
        expected = json.load(f)

    problems, notes = [], []
    for case in sorted(set(observed) | set(expected), key=case_key):
        got, want = observed.get(case), expected.get(case)
        why = []
        if got is not None and (got["behavior"] not in ACCEPTED or got["behaviorClose"] not in ACCEPTED):
            why.append("not accepted")
        if got != want:
            why.append("expected %s" % describe(want))
        if why:
            report = results.get(case, {}).get("reportfile")
            where = " (%s)" % os.path.join(reports, report.replace(".json", ".html")) if report else ""
            line = "  case %s: %s; %s%s" % (case, describe(got), "; ".join(why), where)
            same_behaviour = (
                got is not None
                and want is not None
                and all(got[field] == want[field] for field in ("behavior", "behaviorClose"))
                and "not accepted" not in why
            )
            (notes if same_behaviour else problems).append(line)

    durations = sorted(((results[c]["duration"], c) for c in results), reverse=True)
    total = sum(d for d, _ in durations) / 1000.0
    slowest = ", ".join("%s %.1f s" % (c, d / 1000.0) for d, c in durations[:3])
    print("check: %d cases: %s" % (len(observed), summary(results)))
    print("check: cases took %.1f s in all; slowest: %s" % (total, slowest))
    if notes:
        print("check: %d cases behaved as expected with another close code (not a failure):" % len(notes))
        print("\n".join(notes))
    if problems:
        print("check: %d cases are not as expected:" % len(problems))
        print("\n".join(problems))
        print("check: a regression, or an intended change: then run .ci/autobahn/run --update and commit")
        print("check: %s" % os.path.join(reports, "index.html"))
    print("autobahn: %d passed, %d failed" % (len(set(observed) | set(expected)) - len(problems), len(problems)))
    return 1 if problems else 0


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
