"""Scheduled launch plans: one every minute whose task reports the kickoff time it was given,
and a witness every minute that needs no container (flytekit's Echo task)."""

from datetime import datetime

from flytekit import CronSchedule, LaunchPlan, task, workflow
from flytekit.core.task import Echo


@task
def report_kickoff(kickoff_time: datetime) -> str:
    return kickoff_time.isoformat()


@workflow
def kickoff_wf(kickoff_time: datetime) -> str:
    return report_kickoff(kickoff_time=kickoff_time)


every_minute_lp = LaunchPlan.get_or_create(
    kickoff_wf,
    name="every_minute_lp",
    schedule=CronSchedule(schedule="* * * * *", kickoff_time_input_arg="kickoff_time"),
)

echo_time = Echo(name="echo_time", inputs={"kickoff_time": datetime})


@workflow
def witness_wf(kickoff_time: datetime) -> datetime:
    return echo_time(kickoff_time=kickoff_time)


witness_lp = LaunchPlan.get_or_create(
    witness_wf,
    name="witness_lp",
    schedule=CronSchedule(schedule="*/1 * * * *", kickoff_time_input_arg="kickoff_time"),
)
