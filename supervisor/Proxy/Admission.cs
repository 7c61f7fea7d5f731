namespace Supervisor.Proxy;

/// <summary>
/// A request's way to a worker: a place at the one the <see cref="WorkerDispatcher"/> chose, or a 503
/// with its reason when the queue is full or no worker became ready in time.
/// </summary>
internal static class Admission
{
    /// <summary>
    /// The lease, set as a request feature for the access log; null when the request was refused (and
    /// answered) or its client went away while waiting. <paramref name="affinity"/> is the key of the
    /// worker the request belongs to, if any; <paramref name="avoid"/> one that just failed to take
    /// this request (the request goes back to it only if no other worker can take it).
    /// </summary>
    public static async Task<WorkerLease?> AdmitAsync(HttpContext context, WorkerDispatcher dispatcher, string? affinity, TimeSpan noWorkerWait, string? avoid = null)
    {
        var dispatch = await dispatcher.AcquireAsync(affinity, noWorkerWait, context.RequestAborted, avoid);
        switch (dispatch.Outcome)
        {
            case DispatchOutcome.QueueFull:
                await RefuseAsync(context, "every worker has --worker-connections requests and --max-queue more are waiting");
                return null;
            case DispatchOutcome.NoWorker:
                await RefuseAsync(context, $"no worker became ready within {noWorkerWait.TotalSeconds:0} s");
                return null;
            case DispatchOutcome.Stopping:
                await RefuseAsync(context, "the supervisor is stopping and no worker took the request");
                return null;
            case DispatchOutcome.ClientGone:
                return null;
        }
        context.Features.Set(dispatch.Lease!);
        return dispatch.Lease;
    }

    private static Task RefuseAsync(HttpContext context, string reason)
    {
        context.Response.Headers.RetryAfter = "1";
        return Refusal.WriteAsync(context, StatusCodes.Status503ServiceUnavailable, reason);
    }
}
