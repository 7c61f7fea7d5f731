using Microsoft.AspNetCore.Connections;
using Microsoft.AspNetCore.Connections.Features;

namespace Supervisor.WorkerHost;

/// <summary>
/// When a worker in kernel mode takes client connections from the sockets it shares with the others:
/// <code>
///   Waiting ──accept──▶ Accepting ──drain──▶ Draining
///      └────────────────drain────────────────▲
/// </code>
/// A worker listens from its start but accepts nothing until the supervisor puts it in rotation, so a
/// generation that fails to boot never served, as in proxy mode. Draining is for good: no connection is
/// accepted after it, and <see cref="Drained"/> completes once every connection accepted is closed and
/// every source of connections has ended (handoff mode: the supervisor may have handed over connections
/// just before it said drain; they are served, not dropped).
/// </summary>
internal sealed class ConnectionGate : IDisposable
{
    private readonly TaskCompletionSource<bool> _opened = new(TaskCreationOptions.RunContinuationsAsynchronously);
    private readonly CancellationTokenSource _draining = new();
    private readonly TaskCompletionSource _drained = new(TaskCreationOptions.RunContinuationsAsynchronously);
    private readonly object _lock = new();
    // Each connection accepted and not yet closed, and whether it speaks HTTP/2 only (an h2c listener's).
    private readonly Dictionary<ConnectionContext, bool> _open = [];
    // Handoff mode: listeners that may still yield connections the supervisor handed over.
    private int _sources;

    public bool IsDraining => _draining.IsCancellationRequested;

    /// <summary>Cancelled when the worker leaves rotation: pending accepts end.</summary>
    public CancellationToken Draining => _draining.Token;

    /// <summary>Completes when draining has begun and no accepted connection is left open.</summary>
    public Task Drained => _drained.Task;

    /// <summary>Waiting → Accepting (nothing once draining).</summary>
    public void Open() => _opened.TrySetResult(true);

    /// <summary>
    /// Any state → Draining. HTTP/2 connections get GOAWAY now (the client sends its next requests
    /// elsewhere, and knows which were not processed); HTTP/1.1 ones are left to their next response,
    /// which says Connection: close: closing an idle one now would race the request its client may be
    /// sending on it, which would fail (Kestrel's graceful stop does that, hence this phase before it).
    /// </summary>
    public void BeginDrain()
    {
        ConnectionContext[] http2;
        lock (_lock)
        {
            if (_draining.IsCancellationRequested)
            {
                return;
            }
            _draining.Cancel();
            http2 = [.. _open.Where(entry => entry.Value).Select(entry => entry.Key)];
            CompleteIfDrained();
        }
        _opened.TrySetResult(false);
        foreach (var connection in http2)
        {
            connection.Features.Get<IConnectionLifetimeNotificationFeature>()?.RequestClose();
        }
    }

    /// <summary>True once the worker may accept; false if it was told to drain first.</summary>
    public Task<bool> WaitToAcceptAsync(CancellationToken cancellationToken) => _opened.Task.WaitAsync(cancellationToken);

    /// <summary>Counts a connection as open until it closes.</summary>
    public void Track(ConnectionContext connection, bool http2Only)
    {
        lock (_lock)
        {
            _open.Add(connection, http2Only);
        }
        connection.ConnectionClosed.Register(static state =>
        {
            var (gate, closed) = ((ConnectionGate, ConnectionContext))state!;
            gate.Forget(closed);
        }, (this, connection));
    }

    /// <summary>Handoff mode: a listener that yields connections until the supervisor ends its stream.</summary>
    public void AddSource()
    {
        lock (_lock)
        {
            _sources++;
        }
    }

    /// <summary>A source's last connection has been tracked: it yields no more.</summary>
    public void EndSource()
    {
        lock (_lock)
        {
            _sources--;
            CompleteIfDrained();
        }
    }

    private void Forget(ConnectionContext connection)
    {
        lock (_lock)
        {
            _open.Remove(connection);
            CompleteIfDrained();
        }
    }

    // Under _lock.
    private void CompleteIfDrained()
    {
        if (_open.Count == 0 && _sources == 0 && _draining.IsCancellationRequested)
        {
            _drained.TrySetResult();
        }
    }

    /// <summary>The gate lives as long as the worker's process.</summary>
    public void Dispose() => _draining.Dispose();
}
