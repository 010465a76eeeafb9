"""Docker's container name rules: what a user may call a container, and what we call it otherwise.

Clients (docker CLI, compose, the SDK) show and match these names, and users recognise Docker's
`adjective_surname` style, so both the validation pattern and the generator follow moby exactly:
`daemon/names/names.go` for the pattern and message, `pkg/namesgenerator` for the word lists and the
retry suffix, and `daemon/names.go` (`generateAndReserveName`) for the retry budget and the
short-ID fallback.

Names here are bare (no leading "/"); the containers service adds the slash where the Engine API
shows one.
"""
from __future__ import annotations

import random
import re
from collections.abc import Callable

# Docker's RestrictedNameChars, quoted verbatim in its error message.
RESTRICTED_NAME_CHARS = "[a-zA-Z0-9][a-zA-Z0-9_.-]"

# Go's `$` only matches at the very end of the text; re.fullmatch gives the same (Python's `$`
# would also accept a trailing newline).
_NAME_PATTERN = re.compile(RESTRICTED_NAME_CHARS + "+")

# Docker tries this many generated names (the first without suffix, the rest with a digit)
# before falling back to the container's short ID.
GENERATE_ATTEMPTS = 6

SHORT_ID_LEN = 12

# The one combination Docker refuses to produce: "Steve Wozniak is not boring".
_FORBIDDEN = "boring_wozniak"

# pkg/namesgenerator `left` (frozen upstream since 2022).
ADJECTIVES: tuple[str, ...] = (
    "admiring", "adoring", "affectionate", "agitated", "amazing", "angry", "awesome", "beautiful",
    "blissful", "bold", "boring", "brave", "busy", "charming", "clever", "cool", "compassionate",
    "competent", "condescending", "confident", "cranky", "crazy", "dazzling", "determined",
    "distracted", "dreamy", "eager", "ecstatic", "elastic", "elated", "elegant", "eloquent", "epic",
    "exciting", "fervent", "festive", "flamboyant", "focused", "friendly", "frosty", "funny",
    "gallant", "gifted", "goofy", "gracious", "great", "happy", "hardcore", "heuristic", "hopeful",
    "hungry", "infallible", "inspiring", "intelligent", "interesting", "jolly", "jovial", "keen",
    "kind", "laughing", "loving", "lucid", "magical", "mystifying", "modest", "musing", "naughty",
    "nervous", "nice", "nifty", "nostalgic", "objective", "optimistic", "peaceful", "pedantic",
    "pensive", "practical", "priceless", "quirky", "quizzical", "recursing", "relaxed", "reverent",
    "romantic", "sad", "serene", "sharp", "silly", "sleepy", "stoic", "strange", "stupefied",
    "suspicious", "sweet", "tender", "thirsty", "trusting", "unruffled", "upbeat", "vibrant",
    "vigilant", "vigorous", "wizardly", "wonderful", "xenodochial", "youthful", "zealous", "zen",
)

# pkg/namesgenerator `right`: notable scientists and hackers.
SURNAMES: tuple[str, ...] = (
    "agnesi", "albattani", "allen", "almeida", "antonelli", "archimedes", "ardinghelli",
    "aryabhata", "austin", "babbage", "banach", "banzai", "bardeen", "bartik", "bassi", "beaver",
    "bell", "benz", "bhabha", "bhaskara", "black", "blackburn", "blackwell", "bohr", "booth",
    "borg", "bose", "bouman", "boyd", "brahmagupta", "brattain", "brown", "buck", "burnell",
    "cannon", "carson", "cartwright", "carver", "cerf", "chandrasekhar", "chaplygin", "chatelet",
    "chatterjee", "chaum", "chebyshev", "clarke", "cohen", "colden", "cori", "cray", "curran",
    "curie", "darwin", "davinci", "dewdney", "dhawan", "diffie", "dijkstra", "dirac", "driscoll",
    "dubinsky", "easley", "edison", "einstein", "elbakyan", "elgamal", "elion", "ellis",
    "engelbart", "euclid", "euler", "faraday", "feistel", "fermat", "fermi", "feynman",
    "franklin", "gagarin", "galileo", "galois", "ganguly", "gates", "gauss", "germain",
    "goldberg", "goldstine", "goldwasser", "golick", "goodall", "gould", "greider",
    "grothendieck", "haibt", "hamilton", "haslett", "hawking", "hellman", "heisenberg", "hermann",
    "herschel", "hertz", "heyrovsky", "hodgkin", "hofstadter", "hoover", "hopper", "hugle",
    "hypatia", "ishizaka", "jackson", "jang", "jemison", "jennings", "jepsen", "johnson",
    "joliot", "jones", "kalam", "kapitsa", "kare", "keldysh", "keller", "kepler", "khayyam",
    "khorana", "kilby", "kirch", "knuth", "kowalevski", "lalande", "lamarr", "lamport", "leakey",
    "leavitt", "lederberg", "lehmann", "lewin", "lichterman", "liskov", "lovelace", "lumiere",
    "mahavira", "margulis", "matsumoto", "maxwell", "mayer", "mccarthy", "mcclintock", "mclaren",
    "mclean", "mcnulty", "mendel", "mendeleev", "meitner", "meninsky", "merkle", "mestorf",
    "mirzakhani", "montalcini", "moore", "morse", "murdock", "moser", "napier", "nash",
    "neumann", "newton", "nightingale", "nobel", "noether", "northcutt", "noyce", "panini",
    "pare", "pascal", "pasteur", "payne", "perlman", "pike", "poincare", "poitras",
    "proskuriakova", "ptolemy", "raman", "ramanujan", "ride", "ritchie", "rhodes", "robinson",
    "roentgen", "rosalind", "rubin", "saha", "sammet", "sanderson", "satoshi", "shamir",
    "shannon", "shaw", "shirley", "shockley", "shtern", "sinoussi", "snyder", "solomon",
    "spence", "stonebraker", "sutherland", "swanson", "swartz", "swirles", "taussig", "tesla",
    "tharp", "thompson", "torvalds", "tu", "turing", "varahamihira", "vaughan", "villani",
    "visvesvaraya", "volhard", "wescoff", "wilbur", "wiles", "williams", "williamson", "wilson",
    "wing", "wozniak", "wright", "wu", "yalow", "yonath", "zhukovsky",
)

# Names need no cryptographic strength (Docker uses math/rand), but reading the OS source keeps
# no state that a fork could duplicate, so two processes never walk the same sequence of names.
_DEFAULT_RNG: random.Random = random.SystemRandom()


def valid_name(name: str) -> bool:
    """Whether Docker would accept `name` for a container (one optional leading "/")."""
    return _NAME_PATTERN.fullmatch(name.removeprefix("/")) is not None


def invalid_name_message(name: str) -> str:
    """Docker's exact 400 message for a rejected name; scripts and tests match on it."""
    return f"Invalid container name ({name}), only {RESTRICTED_NAME_CHARS} are allowed"


def random_name(retry: int, rng: random.Random) -> str:
    """One `adjective_surname` draw, with a 0-9 suffix from the second attempt on.

    The suffix keeps the name space large enough that a handful of retries practically always
    finds a free name even when many containers exist.
    """
    while True:
        name = f"{rng.choice(ADJECTIVES)}_{rng.choice(SURNAMES)}"
        if name != _FORBIDDEN:
            break
    if retry > 0:
        name += str(rng.randrange(10))
    return name


def short_id(container_id: str) -> str:
    """Docker's TruncateID: drop an algorithm prefix ("sha256:"), keep 12 hex digits."""
    return container_id.split(":", 1)[-1][:SHORT_ID_LEN]


def generate_name(
    taken: Callable[[str], bool],
    container_id: str,
    rng: random.Random | None = None,
) -> str:
    """A free bare name for a container created without one.

    `taken(name)` says whether a bare name is already in use. Like Docker, try six random names and
    then settle for the container's short ID, which is unique because the ID is. The caller must
    still reserve the result atomically (check-and-set under its own lock).
    """
    source = rng if rng is not None else _DEFAULT_RNG
    for attempt in range(GENERATE_ATTEMPTS):
        name = random_name(attempt, source)
        if not taken(name):
            return name
    return short_id(container_id)
