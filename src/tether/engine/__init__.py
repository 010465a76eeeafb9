"""Services: containers and exec sessions, their records and rules."""
