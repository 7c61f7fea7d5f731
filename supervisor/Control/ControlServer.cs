using System.Net.Sockets;
using System.Threading.Channels;
using Supervisor.Arbitration;
using Supervisor.WorkerHost;

namespace Supervisor.Control;

/// <summary>
/// The Unix socket (mode 0600, in the private run directory) where each worker's worker-host reports:
/// hello, ready, heartbeats, stopping. Every message becomes an event for the arbiter. The connection
/// stays open for the worker's life: when the supervisor dies, the kernel closes it and the worker stops;
/// when the worker dies, the kernel closes it too, and <c>onDisconnected</c> hears of it at once.
/// </summary>
internal sealed class ControlServer : IAsyncDisposable
{
    private readonly Socket _listener;
    private readonly ChannelWriter<ArbiterEvent> _events;
    private readonly Action<string> _onDisconnected;
    private readonly CancellationTokenSource _stopping = new();
    private readonly List<Socket> _connections = [];
    private readonly Dictionary<string, Socket> _byWorker = [];
    private readonly Lock _connectionsLock = new();
    private readonly Task _acceptLoop;

    private ControlServer(Socket listener, ChannelWriter<ArbiterEvent> events, Action<string> onDisconnected)
    {
        _listener = listener;
        _events = events;
        _onDisconnected = onDisconnected;
        _acceptLoop = AcceptLoopAsync();
    }

    /// <param name="onDisconnected">Called with a worker's key when its connection closes, from the thread that saw it.</param>
    public static ControlServer Start(string socketPath, ChannelWriter<ArbiterEvent> events, Action<string> onDisconnected)
    {
        var listener = PrivateUnixListener.Bind(socketPath, backlog: 128);
        return new ControlServer(listener, events, onDisconnected);
    }

    public async ValueTask DisposeAsync()
    {
        await _stopping.CancelAsync();
        _listener.Dispose();
        lock (_connectionsLock)
        {
            foreach (var connection in _connections)
            {
                connection.Dispose();
            }
        }
        try
        {
            await _acceptLoop;
        }
        catch (OperationCanceledException)
        {
        }
        _stopping.Dispose();
    }

    /// <summary>
    /// Sends a worker one line, from the arbiter's loop. The lines are a few bytes on a local socket whose
    /// reader is always reading, so a blocking send does not wait; a worker gone meanwhile is skipped.
    /// </summary>
    public void Send(string workerKey, string line)
    {
        Socket? connection;
        lock (_connectionsLock)
        {
            connection = _byWorker.GetValueOrDefault(workerKey);
        }
        try
        {
            connection?.Send(System.Text.Encoding.ASCII.GetBytes(line + "\n"));
        }
        catch (Exception exception) when (exception is SocketException or ObjectDisposedException)
        {
            // Its exit follows, and is handled as such.
        }
    }

    private Task AcceptLoopAsync() => PrivateUnixListener.AcceptUntilStoppedAsync(_listener, connection =>
    {
        lock (_connectionsLock)
        {
            _connections.Add(connection);
        }
        _ = Task.Run(() => ReadMessagesAsync(connection));
    }, _stopping.Token);

    private async Task ReadMessagesAsync(Socket connection)
    {
        string? workerKey = null;
        try
        {
            using var reader = new StreamReader(new NetworkStream(connection, ownsSocket: false));
            while (await reader.ReadLineAsync(_stopping.Token) is { } line)
            {
                var parts = line.Split(' ', StringSplitOptions.RemoveEmptyEntries);
                if (parts.Length == 0)
                {
                    continue;
                }
                if (workerKey is null)
                {
                    // The first line names the worker: "hello KEY PID". Anything else is not a worker-host.
                    if (parts is not [WorkerProtocol.Hello, var key, _])
                    {
                        return;
                    }
                    workerKey = key;
                    lock (_connectionsLock)
                    {
                        _byWorker[key] = connection;
                    }
                }
                _events.TryWrite(new WorkerReported(workerKey, parts[0], parts.Length > 1 ? parts[1] : null));
            }
        }
        catch (Exception exception) when (exception is IOException or SocketException or ObjectDisposedException or OperationCanceledException)
        {
        }
        finally
        {
            if (workerKey is not null && !_stopping.IsCancellationRequested)
            {
                _onDisconnected(workerKey);
            }
            lock (_connectionsLock)
            {
                _connections.Remove(connection);
                if (workerKey is not null)
                {
                    _byWorker.Remove(workerKey);
                }
            }
            connection.Dispose();
        }
    }
}
