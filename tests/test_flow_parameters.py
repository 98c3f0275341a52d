"""Every flow parameter has a description in the schema the Prefect UI's run form shows."""

from __future__ import annotations

import pytest
from prefect.utilities.callables import parameter_schema

from flows.backtest import backtest
from flows.markets import markets
from flows.monitor import monitor
from flows.retrain import retrain


@pytest.mark.parametrize("flow", [retrain, monitor, backtest, markets], ids=lambda flow: flow.name)
def test_every_flow_parameter_is_described_in_the_run_form(flow) -> None:
    properties = parameter_schema(flow).properties
    assert properties
    assert {
        name: spec.get("description") for name, spec in properties.items() if not spec.get("description")
    } == {}
