#!/usr/bin/env python3
"""Generates the demo home-goods catalog deterministically (same seed, same bytes).

Items belong to the product classes of the WANDS queries (bench/data/wands/query.csv), so real queries have real
matches, and carry structured attributes (category, brand, colour, material, style, size, feature, price band, popularity) that the
ranking-model simulator can use as ground truth independent of the encoder.

Usage: make_catalog.py [--items N] [--seed S] > bench/data/catalog.jsonl
"""
import argparse
import csv
import json
import os
import random
import sys

COLORS = ["black", "white", "grey", "navy blue", "beige", "brown", "walnut", "oak", "gold", "silver", "green",
          "teal", "turquoise", "red", "blush pink", "ivory", "charcoal", "natural", "bronze", "chrome"]
MATERIALS = ["solid wood", "engineered wood", "metal", "velvet", "linen", "leather", "faux leather", "rattan",
             "wicker", "glass", "marble", "ceramic", "cotton", "polyester", "acrylic", "stainless steel", "bamboo",
             "wool", "jute", "resin"]
STYLES = ["modern", "mid-century", "farmhouse", "industrial", "coastal", "traditional", "bohemian", "glam",
          "scandinavian", "rustic", "contemporary", "transitional"]
BRANDS = ["Alcott Hill", "Andover Mills", "Birch Lane", "Ebern Designs", "George Oliver", "Gracie Oaks",
          "Hashtag Home", "Latitude Run", "Laurel Foster", "Mercury Row", "Orren Ellis", "Red Barrel Studio",
          "Sand & Stable", "Three Posts", "Trent Austin", "Wade Logan", "Winston Porter", "Zipcode Design",
          "Stoneford", "Guilford"]
FEATURES = ["with storage", "with drawers", "set of 2", "adjustable", "reversible", "handmade", "weather resistant",
            "easy assembly", "with cushions", "tufted", "round", "rectangular", "oversized", "compact", "with LED",
            "swivel", "foldable", "wall mounted", "water resistant", "hand woven"]
SIZES = ["18x18", "20x20", "5x8", "8x10", "queen", "king", "twin", "full", "48 inch", "60 inch", "72 inch",
         "30 inch", "24 inch", "36 inch", "small", "large"]


def singular(name):
    words = name.replace("&", "and").split()
    last = words[-1]
    if last.endswith("ies"):
        last = last[:-3] + "y"
    elif last.endswith("ches") or last.endswith("shes") or last.endswith("sses"):
        last = last[:-2]
    elif last.endswith("s") and not last.endswith("ss"):
        last = last[:-1]
    return " ".join(words[:-1] + [last]).lower()


def main():
    parser = argparse.ArgumentParser()
    parser.add_argument("--items", type=int, default=5000)
    parser.add_argument("--seed", type=int, default=20221)
    args = parser.parse_args()
    here = os.path.dirname(os.path.abspath(__file__))
    with open(os.path.join(here, "wands", "query.csv"), newline="", encoding="utf-8") as f:
        classes = sorted({row["query_class"] for row in csv.DictReader(f, delimiter="\t") if row["query_class"]})
    rng = random.Random(args.seed)
    out = sys.stdout
    for i in range(args.items):
        category = classes[i % len(classes)] if i < len(classes) * 4 else rng.choice(classes)
        brand, color, material, style = rng.choice(BRANDS), rng.choice(COLORS), rng.choice(MATERIALS), rng.choice(STYLES)
        feature = rng.choice(FEATURES)
        noun = singular(category)
        size_word = rng.choice(SIZES) if rng.random() < 0.3 else None
        size = size_word + " " if size_word else ""
        title = f"{brand} {style} {size}{color} {material} {noun} {feature}".replace("  ", " ")
        text = (f"A {style} {noun} in {color} {material} from {brand}, {feature}. "
                f"Category: {category}.")
        band = rng.choice([("budget", 20, 120), ("mid", 120, 450), ("premium", 450, 2000)])
        item = {
            "id": f"SKU-{i + 1:06d}",
            "title": title,
            "text": text,
            "category": category,
            "brand": brand,
            "color": color,
            "material": material,
            "style": style,
            "size": size_word,
            "feature": feature,
            "price": round(rng.uniform(band[1], band[2]), 2),
            "popularity": round(rng.paretovariate(1.5), 3),
        }
        out.write(json.dumps(item, ensure_ascii=False) + "\n")


if __name__ == "__main__":
    main()
