"""Conformance scenarios reuse the integration harness (tetherd in a netns) and reference engine."""
import sys
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parents[1] / "integration"))
