namespace Supervisor.Proxy;

/// <summary>
/// A request's place at one worker, from the moment it is chosen until the response is done. Kept as a
/// request feature, so the access log can say which worker served the request.
/// </summary>
internal sealed class WorkerLease(WorkerLoad worker, WorkerDispatcher dispatcher)
{
    private int _released;

    public WorkerLoad Worker { get; } = worker;

    public int WorkerPid => Worker.Pid;

    public void Release()
    {
        if (Interlocked.Exchange(ref _released, 1) == 0)
        {
            Worker.Release();
            dispatcher.OnReleased();
        }
    }
}
