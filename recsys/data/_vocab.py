"""Word lists and population shares the synthetic shop draws from (data, not tuning knobs)."""

from __future__ import annotations

# name -> (typical price in EUR, product nouns). Typical prices make price levels differ by category.
CATEGORIES: dict[str, tuple[float, tuple[str, ...]]] = {
    "electronics": (120.0, ("headphones", "speaker", "charger", "smartwatch", "camera")),
    "computers": (450.0, ("laptop", "monitor", "keyboard", "mouse", "tablet")),
    "phones": (300.0, ("smartphone", "phone case", "screen protector", "power bank")),
    "home_kitchen": (35.0, ("frying pan", "knife set", "kettle", "blender", "mug")),
    "furniture": (180.0, ("chair", "desk", "bookshelf", "sofa", "lamp")),
    "garden": (40.0, ("hose", "planter", "shears", "lawn chair", "seed kit")),
    "tools": (55.0, ("drill", "screwdriver set", "hammer", "tape measure", "saw")),
    "toys": (25.0, ("puzzle", "building blocks", "plush bear", "toy car", "board game")),
    "baby": (30.0, ("stroller", "baby monitor", "bottle set", "onesie", "diaper bag")),
    "beauty": (18.0, ("lipstick", "face cream", "shampoo", "perfume", "nail polish")),
    "health": (22.0, ("vitamins", "thermometer", "first aid kit", "protein powder")),
    "grocery": (6.0, ("coffee beans", "olive oil", "pasta", "tea", "chocolate")),
    "pet_supplies": (20.0, ("dog food", "cat litter", "leash", "pet bed", "chew toy")),
    "sports": (45.0, ("yoga mat", "dumbbells", "football", "tennis racket", "bike helmet")),
    "outdoors": (70.0, ("tent", "sleeping bag", "backpack", "headlamp", "water bottle")),
    "automotive": (40.0, ("car charger", "seat cover", "wiper blades", "dash cam")),
    "books": (14.0, ("novel", "cookbook", "biography", "travel guide", "comic")),
    "music": (15.0, ("vinyl record", "cd", "guitar strings", "ukulele")),
    "movies": (12.0, ("blu-ray", "dvd box set", "documentary")),
    "video_games": (50.0, ("console game", "controller", "gaming headset")),
    "fashion_women": (40.0, ("dress", "blouse", "jeans", "scarf", "handbag")),
    "fashion_men": (40.0, ("shirt", "chinos", "jacket", "sweater", "belt")),
    "shoes": (65.0, ("sneakers", "boots", "sandals", "loafers")),
    "jewelry": (60.0, ("necklace", "ring", "earrings", "bracelet", "watch")),
    "office": (12.0, ("notebook", "pen set", "stapler", "desk organiser")),
    "arts_crafts": (16.0, ("paint set", "sketchbook", "yarn", "brush set")),
}
GENERIC_NOUNS: tuple[str, ...] = ("item", "kit", "set", "pack")

ADJECTIVES: tuple[str, ...] = (
    "classic", "compact", "deluxe", "eco", "essential", "lightweight", "modern", "premium", "pro",
    "smart", "vintage", "wireless", "portable", "ultra", "everyday", "handmade",
)

# Brand names are a prefix and a suffix, e.g. "Norvik", "Brightwell".
BRAND_PREFIXES: tuple[str, ...] = (
    "Nor", "Bright", "Alto", "Zen", "Kel", "Mira", "Oak", "Sol", "Vex", "Luma", "Terra", "Blue",
    "Nova", "Fern", "Iron", "Aero", "Pix", "Rho", "Sable", "Quill",
)
BRAND_SUFFIXES: tuple[str, ...] = (
    "vik", "well", "nova", "line", "craft", "works", "ly", "mark", "ton", "field", "wave", "co",
    "gear", "haus", "stone",
)

AGE_BAND_SHARES: dict[str, float] = {
    "18-24": 0.17, "25-34": 0.27, "35-44": 0.22, "45-54": 0.16, "55-64": 0.11, "65+": 0.07,
}
GENDER_SHARES: dict[str, float] = {"female": 0.49, "male": 0.48, "other": 0.03}
LOCATION_SHARES: dict[str, float] = {
    "DE": 0.20, "FR": 0.15, "GB": 0.15, "IT": 0.10, "ES": 0.10, "NL": 0.06, "PL": 0.06, "SE": 0.04,
    "BE": 0.04, "AT": 0.03, "DK": 0.02, "IE": 0.02, "PT": 0.02, "CZ": 0.01,
}

# Relative shop traffic per UTC hour of day (night trough, evening peak).
HOURLY_ACTIVITY: tuple[float, ...] = (
    0.30, 0.20, 0.15, 0.12, 0.12, 0.18, 0.30, 0.50, 0.70, 0.80, 0.85, 0.90,
    0.95, 0.90, 0.85, 0.85, 0.90, 0.95, 1.00, 1.00, 0.95, 0.85, 0.65, 0.45,
)
