namespace Supervisor.Workers;

internal enum WorkerState
{
    /// <summary>Started; not yet listening. Receives no requests.</summary>
    Booting,

    /// <summary>Listening and in rotation.</summary>
    Ready,

    /// <summary>Asked to stop (SIGTERM sent); out of rotation.</summary>
    Stopping,

    /// <summary>The process has exited.</summary>
    Exited,
}
