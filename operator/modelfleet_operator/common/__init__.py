"""What the three controllers share: owner, labels and metadata of children (``owner``), GPU node
placement (``placement``), the reconcile pass with its status write and events (``reconcile``) and the
kopf wiring of a daemon per object (``handlers``)."""
