"""The network graph read from a Flax model, and the op registry every stage shares."""

from crimp_jax.graph.graph import Graph, build_graph, fold_params
from crimp_jax.graph.network import Network
from crimp_jax.graph.ops import REGISTRY, GraphError, OpDef, register
from crimp_jax.graph.trace import read_ops

__all__ = ["Graph", "build_graph", "fold_params", "Network", "REGISTRY", "GraphError", "OpDef",
           "register", "read_ops"]
