"""One time-limited run on a GPU machine: a scheduler's job limit, a preemptible instance, an
air-gapped machine booked for a few minutes. The kit's defaults (`kit run --budget`) and the
dry run's plan of a study over several such runs (`study --dry-run`) start from these."""

ALLOCATION_S = 600  # one command on the machine
START_SLACK_S = 60  # the machine's start, the wheels, the data unpacked
PACK_RESERVE_S = 75  # kept back from the study for the fallback compare and the archive
DEFAULT_BUDGET_S = ALLOCATION_S - START_SLACK_S  # `kit run --budget`
ALLOCATION_STUDY_S = DEFAULT_BUDGET_S - PACK_RESERVE_S  # what the study itself gets
