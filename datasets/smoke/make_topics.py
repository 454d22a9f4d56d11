"""Writes topics-smoke.csv: 320 short synthetic questions and headlines in four topics (sport, science,
food, travel), 80 each, for the multi-class smoke spec and tests.

Written by hand for textbench (no real text): templates filled with random words, with some words
shared between topics so the task is easy but not trivial. Deterministic (seeded).
Run: python3 datasets/smoke/make_topics.py > datasets/smoke/topics-smoke.csv
"""
import csv
import random
import sys

rng = random.Random(20261130)
templates = {
    "sport": [
        "Who won the {sport} final on {day}?",
        "{team} beat {team2} in the {sport} derby, the coach says the season is long",
        "How many points did {team} score in the {sport} match?",
        "Tickets for the {sport} game at the {venue} go on sale {day}",
    ],
    "science": [
        "What is the boiling point of {chem} at high {thing}?",
        "Researchers measure {thing} of {chem} with a new {tool}",
        "Why does {chem} glow under the {tool}?",
        "A new study of {thing} in the lab finds the {tool} was wrong",
    ],
    "food": [
        "How long should I bake the {dish} at the {venue}?",
        "Best {dish} recipe with {ingredient} and a pinch of salt",
        "Can you freeze {dish} made with {ingredient}?",
        "The {venue} serves {dish} with {ingredient} every {day}",
    ],
    "travel": [
        "Which train goes from {city} to {city2} on {day}?",
        "Cheap flights to {city} this {day}, hotel near the {venue} included",
        "Do I need a visa to visit {city}?",
        "The best time to hike near {city} is before the {sport} season",
    ],
}
words = {
    "sport": ["football", "tennis", "rugby", "cricket", "hockey"],
    "team": ["Rovers", "United", "City", "Athletic"],
    "team2": ["Wanderers", "Rangers", "Albion"],
    "day": ["Monday", "Friday", "the weekend", "Sunday", "tomorrow"],
    "venue": ["stadium", "market", "station", "old town hall"],
    "chem": ["water", "sodium", "helium", "copper"],
    "thing": ["pressure", "light", "temperature", "radiation"],
    "tool": ["microscope", "laser", "telescope", "sensor"],
    "dish": ["bread", "lasagne", "curry", "pie", "cake"],
    "ingredient": ["garlic", "butter", "spinach", "lemon"],
    "city": ["Lisbon", "Oslo", "Kyoto", "Lima"],
    "city2": ["Porto", "Bergen", "Osaka", "Cusco"],
}


def fill(template):
    return template.format(**{k: rng.choice(v) for k, v in words.items()})


rows = [(fill(rng.choice(ts)), topic) for topic, ts in templates.items() for _ in range(80)]
rng.shuffle(rows)
w = csv.writer(sys.stdout, lineterminator="\n")
w.writerow(["text", "topic"])
w.writerows(rows)
