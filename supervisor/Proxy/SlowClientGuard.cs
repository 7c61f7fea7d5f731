namespace Supervisor.Proxy;

/// <summary>
/// Bounds what a client that does not read its response can hold. Writes to the client that finish at
/// once (nearly all) cost nothing here. One still waiting after <see cref="PlaceGrace"/> gives the
/// request's place at its worker back to the dispatcher, so clients that never read cannot take every
/// --worker-connections place; one that has made no progress for --send-timeout ends the client's
/// connection (nginx's send_timeout, HAProxy's timeout client). What the response holds meanwhile is
/// bounded by its HTTP/2 stream window here and Kestrel's response buffer.
/// </summary>
internal sealed class SlowClientGuard(WorkerLease lease, TimeSpan sendTimeout, WorkerDispatcher dispatcher)
{
    /// <summary>How long a write may wait before its request gives up its place at the worker.</summary>
    public static readonly TimeSpan PlaceGrace = TimeSpan.FromMilliseconds(250);

    private bool _placeGivenUp;

    /// <summary>True once a write to the client has not finished at once: the client, not the worker, sets the pace.</summary>
    public bool HasWaited { get; private set; }

    /// <summary>Writes to the client's response body; throws <see cref="ClientStalledException"/> at --send-timeout.</summary>
    public ValueTask WriteAsync(HttpContext context, ReadOnlyMemory<byte> chunk)
    {
        var write = context.Response.Body.WriteAsync(chunk, context.RequestAborted);
        return write.IsCompletedSuccessfully ? default : WaitAsync(write.AsTask());
    }

    /// <summary>Sends what is buffered (the response's head, at first); throws <see cref="ClientStalledException"/> at --send-timeout.</summary>
    public ValueTask FlushAsync(HttpContext context)
    {
        var flush = context.Response.Body.FlushAsync(context.RequestAborted);
        return flush.IsCompleted && !flush.IsFaulted && !flush.IsCanceled ? default : WaitAsync(flush);
    }

    /// <summary>Waits for a write that did not finish at once (also for YARP's path, through <see cref="GuardedResponseBody"/>).</summary>
    public async ValueTask WaitAsync(Task pending)
    {
        HasWaited = true;
        var started = TimeProvider.System.GetTimestamp();
        if (!_placeGivenUp)
        {
            if (await FinishesWithinAsync(pending, PlaceGrace))
            {
                return;
            }
            _placeGivenUp = true;
            lease.Release(); // The worker waits on flow control, not working: its place goes to the next request.
        }
        var remaining = sendTimeout > TimeSpan.Zero ? sendTimeout - TimeProvider.System.GetElapsedTime(started) : Timeout.InfiniteTimeSpan;
        if (remaining != Timeout.InfiniteTimeSpan && !await FinishesWithinAsync(pending, remaining > TimeSpan.Zero ? remaining : TimeSpan.Zero))
        {
            // The write still pends; aborting the connection will fail it, and nobody is left to look.
            _ = pending.ContinueWith(static task => _ = task.Exception, CancellationToken.None, TaskContinuationOptions.OnlyOnFaulted | TaskContinuationOptions.ExecuteSynchronously, TaskScheduler.Default);
            dispatcher.CountStalledClient();
            throw new ClientStalledException(sendTimeout);
        }
    }

    private static async Task<bool> FinishesWithinAsync(Task pending, TimeSpan limit)
    {
        try
        {
            await pending.WaitAsync(limit);
            return true;
        }
        catch (TimeoutException)
        {
            return false;
        }
    }
}

/// <summary>The client took nothing of its response for --send-timeout: its connection is to be closed.</summary>
internal sealed class ClientStalledException(TimeSpan sendTimeout)
    : IOException($"the client took nothing of its response for {sendTimeout.TotalSeconds:0.###} s (--send-timeout)");
