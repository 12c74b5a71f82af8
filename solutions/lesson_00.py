"""Reference solutions of lesson 00's exercises (try them first)."""


def solution_1():
    H = W = 512
    f, c = 8, 4
    return (H // f) * (W // f) * c  # 16384, 48x fewer than the 786432 pixels' numbers


def solution_2():
    from ldm_mini.text import Tokenizer

    tokenizer = Tokenizer()

    def n_tokens(caption: str) -> int:
        return int(tokenizer.mask(tokenizer([caption]))[0].sum())

    return n_tokens


def solution_3():
    from ldm_mini.data import load_shapes

    val = load_shapes(1000, "val", seed=0)
    same = sum(c1 == c2 for c1, c2 in zip(val["colour1"], val["colour2"]) if c2 != "none")
    print("two-object images with one colour twice:", same)
    return "never"
