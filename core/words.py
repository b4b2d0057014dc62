"""Small pieces of English for what the app and the CLI print."""


def counted(n: int, noun: str) -> str:
    """'1 run', '2 runs', '0 runs'."""
    return f"{n:,} {noun if n == 1 else noun + 's'}"
