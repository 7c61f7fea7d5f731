using System.Net.Sockets;
using System.Text;
using Supervisor.Control;
using Supervisor.WorkerHost;

namespace Supervisor.Kernel;

/// <summary>
/// --balancer handoff: accepts each client connection on the public sockets and hands it, over a Unix
/// socket (<see cref="DescriptorPassing"/>), to the worker in rotation with the fewest open connections,
/// taking turns among equals. The worker's Kestrel serves it; the supervisor never reads a byte of it.
/// Node's cluster module deals connections out the same way (round-robin), for the same reason: the
/// kernel, left to choose, gives most of a burst of new connections to whichever worker accepts first.
/// <para>Invariants, kept under <see cref="_lock"/>:</para>
/// <list type="bullet">
/// <item>a connection is handed only to a worker admitted (in rotation) whose handoff socket is connected;</item>
/// <item>a worker's <see cref="Hand.Open"/> is what it was handed less the closes it reported;</item>
/// <item>a worker out of rotation is handed nothing more: its socket is closed, and it serves what it
///   had already received before it reads the end of the stream;</item>
/// <item>an accept is pending only while some worker is available: when the last one leaves, the
///   pending accepts are cancelled before <see cref="Publish"/> returns, so new connections wait in the
///   backlog rather than in this dealer.</item>
/// </list>
/// A connection no worker can take yet waits in the backlog until one can, as in kernel mode. That matters
/// at a binary upgrade: the new supervisor accepts on the same sockets, and a connection this dealer took
/// after its workers left would be closed unserved when it exits. Only one accepted in the instant the
/// last worker left waits here for the next, and is closed unserved if the supervisor stops first.
/// </summary>
internal sealed class ConnectionDealer : IDisposable
{
    // A worker whose queue is full (it is not reading) is passed over; if every one is, the next try waits this long.
    private static readonly TimeSpan FullQueuesRetry = TimeSpan.FromMilliseconds(10);
    private static readonly TimeSpan HelloTimeout = TimeSpan.FromSeconds(10);
    private static readonly TimeSpan AcceptRetry = TimeSpan.FromMilliseconds(100);

    private readonly object _lock = new();
    private readonly List<Hand> _workers = [];
    private readonly Socket _handoffListener;
    private readonly Serilog.ILogger _log;
    private readonly CancellationTokenSource _stopping = new();
    private TaskCompletionSource _workerAvailable = new(TaskCreationOptions.RunContinuationsAsynchronously);
    // Cancelled when no worker is available any more: it ends the pending accepts of that period.
    private CancellationTokenSource _availablePeriod = new();
    private HashSet<string> _inRotation = [];
    private uint _turn; // Wraps around harmlessly.

    private ConnectionDealer(Socket handoffListener, Serilog.ILogger log)
    {
        _handoffListener = handoffListener;
        _log = log;
    }

    /// <summary>Listens for the workers at <paramref name="handoffSocketPath"/> and starts accepting on every public socket.</summary>
    public static ConnectionDealer Start(SharedListenSockets sockets, string handoffSocketPath, Serilog.ILogger log)
    {
        var dealer = new ConnectionDealer(PrivateUnixListener.Bind(handoffSocketPath, backlog: 512, SocketType.Seqpacket), log);
        _ = PrivateUnixListener.AcceptUntilStoppedAsync(dealer._handoffListener, channel => _ = dealer.ServeWorkerAsync(channel), dealer._stopping.Token);
        foreach (var (socket, listener) in sockets.Sockets)
        {
            _ = dealer.DealAsync(socket, (byte)listener.Number);
        }
        return dealer;
    }

    /// <summary>The workers in rotation, as the arbiter publishes them: those that left it get nothing more.</summary>
    public void Publish(IReadOnlyCollection<string> inRotation)
    {
        lock (_lock)
        {
            _inRotation = [.. inRotation];
            foreach (var hand in _workers.ToList())
            {
                if (_inRotation.Contains(hand.Key))
                {
                    hand.Admitted = true;
                }
                else if (hand.Admitted)
                {
                    Withdraw(hand); // It left rotation; a worker not yet admitted waits for its turn.
                }
            }
            AvailabilityChanged();
        }
    }

    /// <summary>Stops accepting and closes every worker's stream; connections already handed over are the workers' to finish.</summary>
    public void Dispose()
    {
        _stopping.Cancel();
        _handoffListener.Dispose();
        lock (_lock)
        {
            foreach (var hand in _workers.ToList())
            {
                Withdraw(hand);
            }
        }
    }

    // A worker's handoff socket: its key first, then one byte for each connection it closed.
    private async Task ServeWorkerAsync(Socket channel)
    {
        var buffer = new byte[256];
        Hand hand;
        try
        {
            using var hello = CancellationTokenSource.CreateLinkedTokenSource(_stopping.Token);
            hello.CancelAfter(HelloTimeout);
            var length = await channel.ReceiveAsync(buffer, SocketFlags.None, hello.Token);
            hand = new Hand(Encoding.UTF8.GetString(buffer, 0, length), channel);
        }
        catch (Exception exception) when (exception is SocketException or OperationCanceledException or ObjectDisposedException)
        {
            channel.Dispose();
            return;
        }
        lock (_lock)
        {
            hand.Admitted = _inRotation.Contains(hand.Key); // Its stream connects as its server starts, before it is ready.
            _workers.Add(hand);
            AvailabilityChanged();
        }
        try
        {
            while (await channel.ReceiveAsync(buffer, SocketFlags.None, _stopping.Token) > 0)
            {
                lock (_lock)
                {
                    hand.Open = Math.Max(0, hand.Open - 1);
                }
            }
        }
        catch (Exception exception) when (exception is SocketException or OperationCanceledException or ObjectDisposedException)
        {
        }
        lock (_lock)
        {
            Withdraw(hand); // The worker has gone (or the supervisor is stopping).
        }
    }

    private async Task DealAsync(Socket listener, byte number)
    {
        while (!_stopping.IsCancellationRequested)
        {
            Socket client;
            try
            {
                var available = await WaitForWorkerAsync(); // Until then, connections wait in the backlog.
                using var accepting = CancellationTokenSource.CreateLinkedTokenSource(_stopping.Token, available);
                client = await listener.AcceptAsync(accepting.Token);
            }
            catch (OperationCanceledException) when (!_stopping.IsCancellationRequested)
            {
                continue; // The last worker left: new connections wait in the backlog for the next.
            }
            catch (SocketException exception) when (exception.SocketErrorCode is SocketError.ConnectionAborted or SocketError.ConnectionReset)
            {
                continue; // The client left before it was accepted.
            }
            catch (SocketException exception) when (!_stopping.IsCancellationRequested)
            {
                // Out of descriptors or memory, say: the connections wait in the backlog meanwhile.
                _log.Warning("Accepting a client connection failed ({Error}); trying again in {Delay} ms", exception.SocketErrorCode, AcceptRetry.TotalMilliseconds);
                await Task.Delay(AcceptRetry, CancellationToken.None);
                continue;
            }
            catch (Exception exception) when (exception is SocketException or OperationCanceledException or ObjectDisposedException)
            {
                return; // Stopping: the listening socket is closed.
            }
            await HandOverAsync(client, number);
        }
    }

    private async Task HandOverAsync(Socket client, byte number)
    {
        var descriptor = (int)client.SafeHandle.DangerousGetHandle();
        while (!_stopping.IsCancellationRequested)
        {
            foreach (var hand in Candidates())
            {
                int errno;
                try
                {
                    errno = DescriptorPassing.Send(hand.Channel.SafeHandle, number, descriptor);
                }
                catch (ObjectDisposedException)
                {
                    continue; // Withdrawn meanwhile.
                }
                if (errno == 0)
                {
                    lock (_lock)
                    {
                        hand.Open++;
                    }
                    // The worker holds the connection now. Closing the supervisor's unused copy is a plain
                    // close(), no shutdown(): the connection lives on (HandedConnectionsTests shows it).
                    client.Dispose();
                    return;
                }
                if (errno != DescriptorPassing.WouldBlock)
                {
                    lock (_lock)
                    {
                        Withdraw(hand); // Its process has gone: the next worker takes the connection.
                    }
                }
            }
            try
            {
                await WaitForWorkerAsync();
                await Task.Delay(FullQueuesRetry, _stopping.Token);
            }
            catch (OperationCanceledException)
            {
                break;
            }
        }
        client.Dispose();
    }

    // The workers to try, fewest open connections first, taking turns among equals.
    private List<Hand> Candidates()
    {
        lock (_lock)
        {
            var available = _workers.Where(IsAvailable).ToList();
            if (available.Count == 0)
            {
                return available;
            }
            var first = (int)(_turn++ % (uint)available.Count);
            return [.. available.Select((hand, index) => (hand, turn: (index - first + available.Count) % available.Count))
                .OrderBy(entry => entry.hand.Open).ThenBy(entry => entry.turn).Select(entry => entry.hand)];
        }
    }

    /// <summary>Waits until a worker is available; the token is cancelled when none is any more.</summary>
    private async Task<CancellationToken> WaitForWorkerAsync()
    {
        while (true)
        {
            Task available;
            lock (_lock)
            {
                if (_workers.Any(IsAvailable))
                {
                    if (_availablePeriod.IsCancellationRequested)
                    {
                        _availablePeriod = new CancellationTokenSource();
                    }
                    return _availablePeriod.Token;
                }
                if (_workerAvailable.Task.IsCompleted)
                {
                    _workerAvailable = new TaskCompletionSource(TaskCreationOptions.RunContinuationsAsynchronously);
                }
                available = _workerAvailable.Task;
            }
            await available.WaitAsync(_stopping.Token);
        }
    }

    // Under _lock.
    private static bool IsAvailable(Hand hand) => hand.Admitted;

    // Under _lock. The last worker leaving cancels the pending accepts synchronously: once Publish (or the
    // withdrawal) returns, no accept is pending, so a client connecting from then on waits in the backlog.
    // A deferred cancel (CancelAsync) left an accept running on the thread pool that could take such a
    // connection and close it unserved. Safe under the lock: a socket's cancel callback only marks the
    // operation cancelled (spinning while an accept() is in flight, which never takes this lock) and queues
    // its completion to the thread pool, so nothing re-enters here.
    private void AvailabilityChanged()
    {
        if (_workers.Any(IsAvailable))
        {
            _workerAvailable.TrySetResult();
        }
        else if (!_availablePeriod.IsCancellationRequested)
        {
            _availablePeriod.Cancel();
        }
    }

    // Under _lock. Closing the socket ends the worker's stream after what it was already sent.
    private void Withdraw(Hand hand)
    {
        if (_workers.Remove(hand))
        {
            hand.Channel.Dispose();
            AvailabilityChanged();
        }
    }

    private sealed class Hand(string key, Socket channel)
    {
        public string Key { get; } = key;

        public Socket Channel { get; } = channel;

        /// <summary>In rotation: it is handed connections. Once it leaves rotation it is withdrawn for good.</summary>
        public bool Admitted { get; set; }

        public int Open { get; set; }
    }
}
