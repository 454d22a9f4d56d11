"""Writes sms-smoke.csv: 320 short synthetic messages (text, label), for CI's smoke spec and the tests.

Written by hand for textbench (no real messages): spam and ham templates filled with random words,
with overlapping vocabulary so the task is easy but not trivial. Deterministic (seeded).
Run: python3 datasets/smoke/make_smoke.py > datasets/smoke/sms-smoke.csv
"""
import csv
import random
import sys

rng = random.Random(20261123)
spam_templates = [
    "WINNER! You have won a {prize}. Call {num} now to claim, T&Cs apply",
    "URGENT: your {thing} account needs verification, reply {code} or visit {site}",
    "Free {prize} for you! Text {code} to {num} before {day}",
    "Congratulations, you are selected for a {prize}. Claim at {site}",
    "Cheap {thing} offers this {day} only, call {num}. Stop? txt STOP",
    "You have 1 new voicemail about your {prize}, call {num} to listen",
]
ham_templates = [
    "Are we still meeting for {food} on {day}?",
    "Sorry, running late, see you at the {place} in 10 min",
    "Can you pick up some {food} on the way home?",
    "Thanks for the {thing}, it was lovely. Call me later",
    "I'll be at the {place} until {day}, text me when you're free",
    "Did you finish the {thing}? Mum says hi",
    # Ham that borrows spam's words: the sample should not be separable by a single keyword.
    "I won the {prize} at the quiz lol, call me when you're free",
    "Free for {food} {day}? Text me, no need to reply if busy",
    "Your {thing} reminder: claim the table at the {place} before {day}",
]
tricky_spam = [
    "hey its me, got a {prize} for u, just txt {code} to {num} x",
    "Your {food} order is ready, confirm at {site} to avoid a fee",
]
words = {
    "prize": ["cash prize", "holiday", "new phone", "gift card", "car", "voucher"],
    "thing": ["bank", "mobile", "email", "music", "video", "ringtone", "book", "present", "report"],
    "food": ["pizza", "bread", "milk", "curry", "cake", "coffee"],
    "place": ["station", "library", "office", "gym", "pub", "park"],
    "day": ["Monday", "Friday", "tonight", "tomorrow", "the weekend", "Sunday"],
    "num": ["08712345678", "09061234567", "87121", "80062"],
    "code": ["WIN", "YES", "CLAIM", "GO"],
    "site": ["www.win-now.example", "claim.example.com", "prizes.example.net"],
}


def fill(template):
    return template.format(**{k: rng.choice(v) for k, v in words.items()})


rows = [(fill(rng.choice(spam_templates)), "spam") for _ in range(64)]
rows += [(fill(rng.choice(tricky_spam)), "spam") for _ in range(16)]
rows += [(fill(rng.choice(ham_templates)), "ham") for _ in range(240)]
rng.shuffle(rows)
w = csv.writer(sys.stdout, lineterminator="\n")
w.writerow(["text", "label"])
w.writerows(rows)
