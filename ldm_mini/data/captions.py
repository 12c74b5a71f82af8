"""The caption grammar of the captioned shapes, and its inverse, ``parse_caption``.

Each image holds one or two flat objects; every object has a shape, a colour, a size and a
position, and the caption y describes them in plain English from a small grammar:

    "a red circle"                              (size and position left open)
    "a small blue square on the left"
    "a red circle above a green triangle"       (two objects, spatial relation)
    "a yellow square and a purple circle"       (two objects, no relation: used for binding)

The attributes are stored beside the caption as columns (``ATTRIBUTE_VALUES``), so the
attribute classifier in ``eval/classifier.py`` can check whether a generated image matches its
prompt. Objects in two-object images are stored in *canonical order*: object 1 is the one on
the left (horizontal layout) or at the top (vertical layout). A caption may mention them in
either order ("a blue square to the right of a red circle").
"""

from __future__ import annotations

SHAPES = ("circle", "square", "triangle")
COLOURS = {  # name -> RGB; saturated and far apart, so a 32x32 image shows them clearly
    "red": (220, 40, 40),
    "green": (40, 165, 60),
    "blue": (45, 80, 225),
    "yellow": (235, 200, 25),
    "purple": (140, 55, 185),
    "orange": (245, 125, 20),
}
SIZES = {"small": 0.25, "large": 0.42}  # object diameter as a fraction of the image side
POSITIONS = {  # centre of a single object, as a fraction of (width, height)
    "left": (0.27, 0.5),
    "right": (0.73, 0.5),
    "top": (0.5, 0.27),
    "bottom": (0.5, 0.73),
    "middle": (0.5, 0.5),
}
POSITION_PHRASE = {
    "left": "on the left",
    "right": "on the right",
    "top": "at the top",
    "bottom": "at the bottom",
    "middle": "in the middle",
}
RELATIONS = ("left of", "right of", "above", "below", "and")
RELATION_PHRASE = {"left of": "to the left of", "right of": "to the right of", "above": "above", "below": "below"}
SINGLE_KINDS = ("colour_shape", "size_colour_shape", "colour_shape_pos", "size_colour_shape_pos")
CAPTION_KINDS = SINGLE_KINDS + ("two_relation", "two_and")

# Every categorical column with its possible values; "none" marks a missing second object.
ATTRIBUTE_VALUES = {
    "shape1": SHAPES,
    "colour1": tuple(COLOURS),
    "size1": tuple(SIZES),
    "pos1": tuple(POSITIONS),
    "shape2": ("none",) + SHAPES,
    "colour2": ("none",) + tuple(COLOURS),
    "size2": ("none",) + tuple(SIZES),
    "pos2": ("none",) + tuple(POSITIONS),
}


# ---------------------------------------------------------------------------- parsing captions


def parse_caption(caption: str) -> dict:
    """What a caption asks for: the inverse of the caption grammar above.

    Returns the attribute columns of a ``Scene`` (``n_objects``, ``shape1`` ... ``pos2``,
    ``relation``), where ``None`` means "the caption leaves this open":

    - one object ("a small red circle on the left"): ``shape1``, ``colour1``, and ``size1`` /
      ``pos1`` only if the caption mentions them; object 2 is ``"none"`` (the caption asks
      for one object), ``relation`` is ``""``.
    - two objects with a relation ("a blue square to the right of a red circle"): the
      relation fixes the *canonical order* of the dataset, object 1 = left / top, so this
      gives ``colour1="red", shape1="circle", pos1="left"`` and object 2 the blue square
      on the right. ``relation`` is the caption's own word ("right of"), as in the columns.
    - two objects joined by "and": objects in the order mentioned, positions ``None``
      (either order matches the image).

    Sizes are never stated for two objects, so ``size1``/``size2`` are ``None`` there.
    An unparseable caption raises ``ValueError``.
    """
    words = caption.lower().replace(",", " ").split()
    first, i = _parse_object(words, 0, caption)
    rest = " ".join(words[i:])
    if rest == "" or rest in POSITION_PHRASE.values():  # one object
        pos = next((p for p, phrase in POSITION_PHRASE.items() if phrase == rest), None)
        return {
            "n_objects": 1,
            **_numbered(first, 1),
            "pos1": pos,
            **_numbered(_NO_OBJECT, 2),
            "pos2": "none",
            "relation": "",
        }
    for relation in RELATIONS:  # two objects: "<object> <relation phrase> <object>"
        phrase = RELATION_PHRASE.get(relation, relation).split()
        if words[i : i + len(phrase)] == phrase:
            second, j = _parse_object(words, i + len(phrase), caption)
            if j != len(words):
                raise ValueError(
                    f"cannot parse caption {caption!r}: unexpected words {' '.join(words[j:])!r} after the "
                        f"second object"
                )
            return _two_objects(first, second, relation)
    raise ValueError(
        f"cannot parse caption {caption!r}: after {' '.join(words[:i])!r} expected nothing, a position "
        f"({', '.join(POSITION_PHRASE.values())}) or a relation ({', '.join(RELATION_PHRASE.values())}, and) "
        "followed by a second object, e.g. 'a red circle above a blue square'"
    )


_NO_OBJECT = {"shape": "none", "colour": "none", "size": "none"}


def _parse_object(words: list[str], i: int, caption: str) -> tuple[dict, int]:
    """'a [size] colour shape' starting at words[i] -> ({shape, colour, size}, index after it)."""
    start = i
    if i < len(words) and words[i] in ("a", "an"):
        i += 1
    size = words[i] if i < len(words) and words[i] in SIZES else None
    i += size is not None
    if i + 2 > len(words) or words[i] not in COLOURS or words[i + 1] not in SHAPES:
        raise ValueError(
            f"cannot parse caption {caption!r}: expected an object '[a] [size] colour shape' at "
            f"{' '.join(words[start:]) or 'the end'!r}; sizes {tuple(SIZES)}, colours {tuple(COLOURS)}, shapes {SHAPES}"
        )
    return {"shape": words[i + 1], "colour": words[i], "size": size}, i + 2


def _numbered(obj: dict, k: int) -> dict:
    return {f"shape{k}": obj["shape"], f"colour{k}": obj["colour"], f"size{k}": obj["size"]}


def _two_objects(a: dict, b: dict, relation: str) -> dict:
    # "a left of b" and "a above b" name object 1 first; "right of" and "below" name it second.
    if relation == "and":
        positions = (None, None)
    else:
        if relation in ("right of", "below"):
            a, b = b, a
        positions = ("left", "right") if relation in ("left of", "right of") else ("top", "bottom")
    return {
        "n_objects": 2,
        **_numbered(a, 1),
        "pos1": positions[0],
        **_numbered(b, 2),
        "pos2": positions[1],
        "relation": relation,
    }


def caption_objects(caption: str) -> list[tuple[str, str]]:
    """The (colour, shape) pairs a two-object caption asks for, in the dataset's canonical order."""
    want = parse_caption(caption)
    if want["n_objects"] != 2:
        raise ValueError(
            f"binding needs a caption with two objects, e.g. 'a red circle and a blue square', got {caption!r}"
        )
    return [(want["colour1"], want["shape1"]), (want["colour2"], want["shape2"])]
