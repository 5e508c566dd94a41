"""Case studies: retrospective screens that check the pipeline can rediscover known
conductors it never saw in training (``miscreen case <name>``)."""
