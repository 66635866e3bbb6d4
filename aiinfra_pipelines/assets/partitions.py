"""Iterations are a dynamic partition: the sensor, the schedule, the CLI or the UI add them."""


import dagster as dg

ITERATIONS = "iterations"
iterations_partitions = dg.DynamicPartitionsDefinition(name=ITERATIONS)


def iteration_key(n: int) -> str:
    """Zero-padded so that keys sort in iteration order."""
    return f"{n:04d}"


def iteration_number(key: str) -> int:
    """The iteration number of a partition key; a key that is not a number is refused by name."""
    if not key.isdigit():
        raise ValueError(
            f"partition {key!r} of '{ITERATIONS}': iteration keys are numbers such as {iteration_key(1)!r}"
        )
    return int(key)


def next_iteration_key(existing: list[str]) -> str:
    numbers = [int(k) for k in existing if k.isdigit()]
    return iteration_key(max(numbers, default=0) + 1)
