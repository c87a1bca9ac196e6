"""The first history schema: gates, runs, measurements, comparisons.

Revision ID: 0001
Revises:
Create Date: 2026-01-01
"""

from __future__ import annotations

import sqlalchemy as sa
from alembic import op

revision = "0001"
down_revision = None
branch_labels = None
depends_on = None


def upgrade() -> None:
    op.create_table(
        "gates",
        sa.Column("id", sa.Integer, primary_key=True),
        sa.Column("gate_id", sa.String(200), nullable=False, unique=True),
        sa.Column("started_at", sa.Float, nullable=False),
        sa.Column("ended_at", sa.Float),
        sa.Column("outcome", sa.String(20), nullable=False),
        sa.Column("exit_code", sa.Integer, nullable=False),
        sa.Column("score", sa.Float),
        sa.Column("target", sa.String(40), nullable=False),
        sa.Column("profile", sa.String(40)),
        sa.Column("baseline", sa.String(200)),
        sa.Column("release", sa.String(200)),
        sa.Column("suite_version", sa.String(80)),
        sa.Column("git_commit", sa.String(64)),
        sa.Column("service_version", sa.String(200)),
        sa.Column("environment", sa.JSON, nullable=False),
        sa.Column("gate_dir", sa.Text),
    )
    op.create_index("ix_gates_release", "gates", ["release"])
    op.create_table(
        "runs",
        sa.Column("id", sa.Integer, primary_key=True),
        sa.Column("run_id", sa.String(200), nullable=False, unique=True),
        sa.Column("scenario", sa.String(100), nullable=False),
        sa.Column("experiment", sa.String(200), nullable=False),
        sa.Column("title", sa.Text),
        sa.Column("target", sa.String(40), nullable=False),
        sa.Column("profile", sa.String(40)),
        sa.Column("outcome", sa.String(20), nullable=False),
        sa.Column("exit_code", sa.Integer, nullable=False),
        sa.Column("score", sa.Float),
        sa.Column("aborted_by", sa.Text),
        sa.Column("started_at", sa.Float, nullable=False),
        sa.Column("ended_at", sa.Float),
        sa.Column("fault_name", sa.Text),
        sa.Column("fault_start", sa.Float),
        sa.Column("fault_end", sa.Float),
        sa.Column("load_shape", sa.String(20)),
        sa.Column("load_asked_eps", sa.Float),
        sa.Column("load_achieved_eps", sa.Float),
        sa.Column("load_acknowledged", sa.Integer),
        sa.Column("load_failed", sa.Integer),
        sa.Column("release", sa.String(200)),
        sa.Column("suite_version", sa.String(80)),
        sa.Column("git_commit", sa.String(64)),
        sa.Column("service_version", sa.String(200)),
        sa.Column("environment", sa.JSON, nullable=False),
        sa.Column("errors", sa.JSON, nullable=False),
        sa.Column("trial_group", sa.String(200)),
        sa.Column("gate_pk", sa.Integer, sa.ForeignKey("gates.id", ondelete="SET NULL")),
        sa.Column("run_dir", sa.Text),
        sa.Column("recorded_at", sa.Float, nullable=False),
    )
    op.create_index("ix_runs_experiment_started", "runs", ["experiment", "started_at"])
    op.create_index("ix_runs_scenario_started", "runs", ["scenario", "started_at"])
    op.create_index("ix_runs_release", "runs", ["release"])
    op.create_index("ix_runs_trial_group", "runs", ["trial_group"])
    op.create_index("ix_runs_gate_pk", "runs", ["gate_pk"])
    op.create_table(
        "measurements",
        sa.Column("id", sa.Integer, primary_key=True),
        sa.Column("run_pk", sa.Integer, sa.ForeignKey("runs.id", ondelete="CASCADE"), nullable=False),
        sa.Column("slo", sa.String(100), nullable=False),
        sa.Column("outcome", sa.String(20), nullable=False),
        sa.Column("measured", sa.Float),
        sa.Column("objective", sa.String(100)),
        sa.Column("unit", sa.String(40)),
        sa.Column("reason", sa.Text),
    )
    op.create_index("ix_measurements_slo_run", "measurements", ["slo", "run_pk"])
    op.create_table(
        "comparisons",
        sa.Column("id", sa.Integer, primary_key=True),
        sa.Column("gate_pk", sa.Integer, sa.ForeignKey("gates.id", ondelete="CASCADE"), nullable=False),
        sa.Column("scenario", sa.String(100), nullable=False),
        sa.Column("experiment", sa.String(200), nullable=False),
        sa.Column("slo", sa.String(100), nullable=False),
        sa.Column("verdict", sa.String(30), nullable=False),
        sa.Column("p_value", sa.Float),
        sa.Column("effect_size", sa.Float),
        sa.Column("median_baseline", sa.Float),
        sa.Column("median_candidate", sa.Float),
        sa.Column("n_baseline", sa.Integer, nullable=False),
        sa.Column("n_candidate", sa.Integer, nullable=False),
        sa.Column("reason", sa.Text),
    )
    op.create_index("ix_comparisons_gate_pk", "comparisons", ["gate_pk"])


def downgrade() -> None:
    op.drop_table("comparisons")
    op.drop_table("measurements")
    op.drop_table("runs")
    op.drop_table("gates")
