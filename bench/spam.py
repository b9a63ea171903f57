#!/usr/bin/python3
"""Spam filtering: accuracy and speed of mxguard, bogofilter and
SpamAssassin's Bayes, trained on the same train split of the SpamAssassin
public corpus and tested on the same test split, in one run.

    ./mxg bench spam

For each: ROC AUC of its spam probability, ham marked spam and spam missed at
its default decision (mxguard: action tag or reject; bogofilter: "Spam";
SpamAssassin's Bayes: probability > 0.5), learning speed over the train part
(best of 3 runs from an empty database for mxguard and bogofilter, one for
SpamAssassin) and scanning speed over the test part on one core (taskset -c 0,
best of 3 for mxguard and bogofilter).
"""
import argparse
import bisect
import json
import os
import pathlib
import re
import shutil
import subprocess
import sys
import tempfile
import time

HERE = pathlib.Path(__file__).resolve().parent
TOP = HERE.parent
MXGUARD = str(TOP / "build" / "src" / "mxguard")
# learning is timed as the best of this many runs from an empty store (the
# first run of a process after a build pays for loading it), scanning as
# the best of 3; SpamAssassin's slow learning runs once
LEARN_RUNS = 3
OUT = TOP / "bench" / "out"

SA_SCORE = r"""
use strict; use warnings;
use Mail::SpamAssassin;
my ($db, $list) = @ARGV;
my $sa = Mail::SpamAssassin->new({
  dont_copy_prefs => 1, local_tests_only => 1, userstate_dir => $db,
  userprefs_filename => "/dev/null",
  post_config_text => "use_bayes 1\nbayes_path $db/bayes\nbayes_auto_learn 0\n",
});
$sa->init(1);
open my $fh, '<', $list or die;
while (my $p = <$fh>) { chomp $p; open my $m, '<', $p or next; local $/; my $t = <$m>; close $m;
  my $mail = $sa->parse($t); my $st = $sa->check($mail);
  my $b = $st->{bayes_score}; $b = 0.5 unless defined $b;
  printf "%s\t%.10f\n", $p, $b; $st->finish; $mail->finish; }
"""


def auc(ham, spam):
    s = sorted(spam)
    bad = 0.0
    for h in ham:
        lo, hi = bisect.bisect_left(s, h), bisect.bisect_right(s, h)
        bad += lo + 0.5 * (hi - lo)
    return 1 - bad / (len(ham) * len(spam)), bad


def timed(argv, ok=(0,), **kw):
    t = time.time()
    r = subprocess.run(argv, capture_output=True, text=True, **kw)
    if r.returncode not in ok:
        raise RuntimeError(f"{argv[0]} failed: {r.stderr[-2000:]}")
    return time.time() - t, r.stdout


def lines(p):
    return [l for l in pathlib.Path(p).read_text().splitlines() if l]


def run_mxguard(work, c):
    (work / "r").write_text("")
    conf = work / "mx.conf"
    conf.write_text(f'listen = ["127.0.0.1:1"]; domains = ["example.test"]; '
                    f'recipients = {{ file = "{work}/r"; }}; downstream = "smtp:127.0.0.1:2"; '
                    f'store = {{ path = "{work}/store"; }};\n')
    def learn():
        shutil.rmtree(work / "store", ignore_errors=True)
        t1, _ = timed([MXGUARD, "learn", "--spam", "-c", str(conf), "-T", str(c / "train-spam.txt")])
        t2, _ = timed([MXGUARD, "learn", "--ham", "-c", str(conf), "-T", str(c / "train-ham.txt")])
        return t1 + t2
    tl = min(learn() for _ in range(LEARN_RUNS))
    args = ["taskset", "-c", "0", MXGUARD, "scan", "--json", "-c", str(conf),
            "-T", str(c / "test-spam.txt"), "-T", str(c / "test-ham.txt")]
    ts, out = min((timed(args) for _ in range(3)), key=lambda x: x[0])
    rows = [json.loads(l) for l in out.splitlines()]
    spam_set = set(lines(c / "test-spam.txt"))
    res = {"learn": tl, "scan": ts, "ham": [], "spam": [], "fp": 0, "fn": 0}
    for r in rows:
        is_spam = r["path"] in spam_set
        res["spam" if is_spam else "ham"].append(r["spam_probability"])
        flagged = r["action"] in ("tag", "reject")
        res["fp"] += flagged and not is_spam
        res["fn"] += is_spam and not flagged
    return res


def run_bogofilter(work, c):
    db = work / "bogo"

    def learn():
        shutil.rmtree(db, ignore_errors=True)
        db.mkdir()
        t1, _ = timed(["bogofilter", "-d", str(db), "-s", "-B", *lines(c / "train-spam.txt")])
        t2, _ = timed(["bogofilter", "-d", str(db), "-n", "-B", *lines(c / "train-ham.txt")])
        return t1 + t2
    tl = min(learn() for _ in range(LEARN_RUNS))
    files = lines(c / "test-spam.txt") + lines(c / "test-ham.txt")
    args = ["taskset", "-c", "0", "bogofilter", "-d", str(db), "-v", "-B", *files]
    # bogofilter's exit code says what the last message was (0, 1, 2)
    ts, out = min((timed(args, ok=(0, 1, 2)) for _ in range(3)), key=lambda x: x[0])
    spam_set = set(lines(c / "test-spam.txt"))
    res = {"learn": tl, "scan": ts, "ham": [], "spam": [], "fp": 0, "fn": 0}
    for line in out.splitlines():
        m = re.match(r"(\S+) X-Bogosity: (\w+), .*spamicity=([0-9.]+)", line)
        if not m:
            continue
        is_spam = m.group(1) in spam_set
        res["spam" if is_spam else "ham"].append(float(m.group(3)))
        flagged = m.group(2) == "Spam"
        res["fp"] += flagged and not is_spam
        res["fn"] += is_spam and not flagged
    return res


def run_spamassassin(work, c):
    db = work / "sa"
    db.mkdir()
    t1, _ = timed(["sa-learn", "--dbpath", str(db), "--spam", *lines(c / "train-spam.txt")])
    t2, _ = timed(["sa-learn", "--dbpath", str(db), "--ham", *lines(c / "train-ham.txt")])
    lst = work / "test.txt"
    lst.write_text("\n".join(lines(c / "test-spam.txt") + lines(c / "test-ham.txt")) + "\n")
    script = work / "score.pl"
    script.write_text(SA_SCORE)
    ts, out = timed(["taskset", "-c", "0", "perl", str(script), str(db), str(lst)])
    spam_set = set(lines(c / "test-spam.txt"))
    res = {"learn": t1 + t2, "scan": ts, "ham": [], "spam": [], "fp": 0, "fn": 0}
    for line in out.splitlines():
        p, _, v = line.partition("\t")
        is_spam = p in spam_set
        res["spam" if is_spam else "ham"].append(float(v))
        flagged = float(v) > 0.5
        res["fp"] += flagged and not is_spam
        res["fn"] += is_spam and not flagged
    return res


def transfer_split(corpus, out):
    """Lists for --transfer, from the train part alone: the folders of 2002
    (spam-1, easy-ham-1) to learn from, those of 2003 (spam-2, easy-ham-2) to
    test on, hard-ham-1 (undated) split in two by file name."""
    out.mkdir()
    hard = sorted(p for p in lines(corpus / "train-ham.txt") if "/hard-ham-1/" in p)
    older = set(hard[:len(hard) // 2])
    for label in ("spam", "ham"):
        learn, test = [], []
        for p in lines(corpus / f"train-{label}.txt"):
            folder = pathlib.Path(p).parent.name
            (learn if folder in ("spam-1", "easy-ham-1") or p in older else test).append(p)
        (out / f"train-{label}.txt").write_text("\n".join(learn) + "\n")
        (out / f"test-{label}.txt").write_text("\n".join(test) + "\n")
    return out


def main():
    ap = argparse.ArgumentParser(description="spam filtering: mxguard, bogofilter, SpamAssassin's Bayes")
    ap.add_argument("--filters", default="mxguard,bogofilter,spamassassin-bayes",
                    help="comma-separated subset to run (SpamAssassin takes minutes)")
    ap.add_argument("--corpus", metavar="DIR",
                    help="a folder with train-spam.txt, train-ham.txt, test-spam.txt and "
                         "test-ham.txt, each a list of message files, one path a line "
                         "(default: the project's split of the SpamAssassin corpus)")
    ap.add_argument("--transfer", action="store_true",
                    help="train on the older half of the project's train part (spam-1, "
                         "easy-ham-1, the first half of hard-ham-1) and test on the newer "
                         "(spam-2, easy-ham-2, the rest of hard-ham-1): how each filter "
                         "does on mail later than what it learned; the test part stays unseen")
    args = ap.parse_args()
    want = set(args.filters.split(","))
    if args.corpus and args.transfer:
        sys.exit("spam.py: --corpus and --transfer go alone")
    subprocess.run([str(TOP / "scripts" / "deps.sh"), "bench"], check=True)
    OUT.mkdir(parents=True, exist_ok=True)
    work = pathlib.Path(tempfile.mkdtemp(prefix="mxguard-spam-", dir=OUT))
    if args.transfer:
        subprocess.run([str(TOP / "scripts" / "corpus.sh"), str(TOP / ".cache" / "corpus")], check=True)
        args.corpus = str(transfer_split(TOP / ".cache" / "corpus", work / "transfer"))
    if args.corpus:
        cache = pathlib.Path(args.corpus).resolve()
        for f in ("train-spam.txt", "train-ham.txt", "test-spam.txt", "test-ham.txt"):
            if not (cache / f).is_file():
                shutil.rmtree(work, ignore_errors=True)
                sys.exit(f"spam.py: {cache / f}: no such file")
    else:
        cache = TOP / ".cache" / "corpus"
        subprocess.run([str(TOP / "scripts" / "corpus.sh"), str(cache)], check=True)
    ntrain = len(lines(cache / "train-spam.txt")) + len(lines(cache / "train-ham.txt"))
    ntest = len(lines(cache / "test-spam.txt")) + len(lines(cache / "test-ham.txt"))
    for f in ("train-spam.txt", "train-ham.txt", "test-spam.txt", "test-ham.txt"):
        for p in lines(cache / f):  # warm the page cache for everyone
            pathlib.Path(p).read_bytes()
    results = {}
    for name, fn in (("mxguard", run_mxguard), ("bogofilter", run_bogofilter),
                     ("spamassassin-bayes", run_spamassassin)):
        if name not in want:
            continue
        try:
            print(f"  {name} ...", file=sys.stderr)
            results[name] = fn(work, cache)
        except (RuntimeError, FileNotFoundError) as e:
            print(f"  {name}: {e}", file=sys.stderr)
    nham, nspam = len(lines(cache / "test-ham.txt")), len(lines(cache / "test-spam.txt"))
    source = ("the project's train part, older half -> newer half" if args.transfer else
              str(cache) if args.corpus else "SpamAssassin public corpus, the project's split")
    print(f"\nspam benchmark: train {ntrain} messages, test {nham} ham + {nspam} spam ({source})")
    print(f"{'filter':20s} {'AUC':>9s} {'misordered':>10s} {'ham->spam':>10s} {'spam missed':>12s} "
          f"{'learn msg/s':>12s} {'scan msg/s':>11s}")
    for name, r in results.items():
        a, bad = auc(r["ham"], r["spam"])
        print(f"{name:20s} {a:9.6f} {bad:10.1f} {r['fp']:4d} ({100 * r['fp'] / nham:4.2f}%) "
              f"{r['fn']:4d} ({100 * r['fn'] / nspam:5.2f}%) {ntrain / r['learn']:12.0f} "
              f"{ntest / r['scan']:11.0f}")
    if "mxguard" in results and "bogofilter" in results:
        m, b = results["mxguard"], results["bogofilter"]
        print(f"\nmxguard vs bogofilter: scan {b['scan'] / m['scan']:.1f}x, "
              f"learn {b['learn'] / m['learn']:.1f}x")
    shutil.rmtree(work, ignore_errors=True)


if __name__ == "__main__":
    main()
