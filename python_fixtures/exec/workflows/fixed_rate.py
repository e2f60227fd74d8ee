"""A launch plan on a fixed rate of one minute, whose workflow needs no container (flytekit's
Echo task passes the kickoff time through)."""

from datetime import datetime, timedelta

from flytekit import FixedRate, LaunchPlan, workflow
from flytekit.core.task import Echo

echo_kickoff = Echo(name="echo_kickoff", inputs={"kickoff_time": datetime})


@workflow
def rate_wf(kickoff_time: datetime) -> datetime:
    return echo_kickoff(kickoff_time=kickoff_time)


every_minute_rate_lp = LaunchPlan.get_or_create(
    rate_wf,
    name="every_minute_rate_lp",
    schedule=FixedRate(duration=timedelta(minutes=1), kickoff_time_input_arg="kickoff_time"),
)
