"""Small pieces of English for what the app and the CLI print."""


def counted(n: int, noun: str, plural: str | None = None) -> str:
    """'1 run', '2 runs', '0 runs' (`plural` where adding an s is wrong)."""
    return f"{n:,} {noun if n == 1 else plural or noun + 's'}"
