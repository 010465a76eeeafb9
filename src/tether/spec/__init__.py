"""The container spec: typed Config/HostConfig/NetworkingConfig (types.py, generic over their
fields by fields.py), dockerd's create-time checks and defaults (create.py), and which fields
tether applies (support.py). Pure: it imports only tether.rules."""
