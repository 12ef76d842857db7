"""The planner: index clients, metadata, resolver provider and plan building.

The library entry is :func:`fetchplan.planner.api.make_plan` (``PlanOptions`` in, a validated
``Plan`` and its ``Timings`` out). The pieces, pure ones first:

* :mod:`.target` — the target environment (markers, tags in priority order);
* :mod:`.index` — PEP 503/691 page parsers into ``Link`` values, and the ``IndexClient``;
* :mod:`.reqfile` — requirements and constraints files, pip's conventions;
* :mod:`.candidates` — the best file of each version for the target, and why others lost;
* :mod:`.provider` / :mod:`.resolve` — the resolvelib adapter and its error explanations;
* :mod:`.metadata` — core metadata, cheapest first (local, PEP 658, ranges, whole file);
* :mod:`.prefetch` — the finder that fetches pages and metadata ahead on a thread pool;
* :mod:`.options` — ``PlanOptions`` (the command line as values) and ``PlanResult``;
* :mod:`.settings` — pip's precedence over command line, files, environment and configuration;
* :mod:`.sources` — index and find-links locations, and how several indexes combine;
* :mod:`.locations` — the settings' locations, checked (and pip's configuration read);
* :mod:`.preconnect` — connections to the index opened while the planner is imported;
* :mod:`.http` — the shared session (retries, auth, timing) and why sharing it is safe;
* :mod:`.context` — what every resolution of a run shares (pages, metadata, pool);
* :mod:`.targets` — ``--target`` specs;
* :mod:`.requested` — what each target asks for, and hash-checking mode;
* :mod:`.fetch_metadata` — every file's metadata once per run, and the metadata cache;
* :mod:`.facts` — hashes, sizes and local copies of every chosen file;
* :mod:`.access` — the planner's session, and index access for commands that only read;
* :mod:`.sdist` — sdists: metadata (prepared by the backend when dynamic), build requirements;
* :mod:`.build` — resolutions to plan, purely; :mod:`.timings` — where the time went;
* :mod:`.api` reads the inputs and starts the connections; :mod:`.planning` wires the rest.
"""
