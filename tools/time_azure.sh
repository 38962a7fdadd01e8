#!/usr/bin/env bash
# Times the full Azure conversation trace (19,366 requests) on eight H100 replicas: the median
# of five runs (RUNS=N to change). Usage: tools/time_azure.sh [servesim binary]
exec "$(dirname "$0")/bench.sh" "${1:-build/servesim}" azure8
