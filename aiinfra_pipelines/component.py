"""A Dagster Component around `build_defs`, for `dg`-style projects:

    # defs/aiinfra/defs.yaml
    type: aiinfra_pipelines.component.AiinfraLifecycle
    attributes:
      spec_path: workloads/llm-serving.yaml
      state_dir: /var/lib/aiinfra
"""

from __future__ import annotations

from typing import Optional

import dagster as dg


class AiinfraLifecycle(dg.Component, dg.Resolvable, dg.Model):
    """The AI-infrastructure lifecycle (nine assets, the retuning sensor and schedule) for one workload."""

    spec_path: str
    state_dir: Optional[str] = None
    target: Optional[str] = None

    def build_defs(self, context: dg.ComponentLoadContext) -> dg.Definitions:
        from aiinfra_pipelines.defs import build_defs

        return build_defs(spec_path=self.spec_path, state_dir=self.state_dir, target=self.target)
