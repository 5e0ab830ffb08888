// Loaded into every worker by `--require` (the primary adds it to execArgv): the worker half,
// whatever file the worker runs. A no-op in any other process (a worker's own children too).
import { installWorker } from './worker'

installWorker()
