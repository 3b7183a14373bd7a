"""What ``%%mlbox`` / ``%mlbox`` need from the kernel they run in, one concept a module.

- :mod:`.context`: where a cell's dependencies come from (the kernel's notebook, or its history).
- :mod:`.setup_cells`: which earlier cells ``--with-setup`` runs again (imports, definitions).
- :mod:`.cell`: a ``%%mlbox`` cell as a request, its work, and how its ending reads.
- :mod:`.commands`: the work of ``%mlbox build`` / ``%mlbox run``.
- :mod:`.defaults`: ``%mlbox config`` on the ``MlboxDefaults`` every call starts from.
- :mod:`.job`: a task rendered by a progress view, waited for blocking or on the event loop.
- :mod:`.display`: the container's outputs shown here, errors shown short.
- :mod:`.async_cells`: the input transformer that makes those cells ``await`` in ipykernel.

``jupyter_mlbox.magics`` only parses arguments and hands the results to these.
"""
