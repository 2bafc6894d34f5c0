#!/bin/sh
# Create the namespace Outbound uses, unless it exists. The temporal CLI reads
# TEMPORAL_ADDRESS, and the compose file sets NAMESPACE and RETENTION.
set -eu

attempts=30
until temporal operator cluster health; do
    attempts=$((attempts - 1))
    if [ "$attempts" -le 0 ]; then
        echo "Temporal at $TEMPORAL_ADDRESS did not become healthy" >&2
        exit 1
    fi
    sleep 2
done

if temporal operator namespace describe --namespace "$NAMESPACE" >/dev/null 2>&1; then
    echo "Namespace $NAMESPACE exists"
else
    temporal operator namespace create --namespace "$NAMESPACE" --retention "$RETENTION"
    echo "Namespace $NAMESPACE created with retention $RETENTION"
fi
