using System.Net;
using System.Net.Sockets;
using System.Text;
using System.Threading.Channels;
using Microsoft.AspNetCore.Connections;
using Microsoft.AspNetCore.Server.Kestrel.Transport.Sockets;
using Microsoft.Extensions.Logging;
using Microsoft.Extensions.Options;

namespace Supervisor.WorkerHost;

/// <summary>
/// A public listener in handoff mode, as the app's Kestrel binds it: no socket of its own; the
/// connections are the ones the supervisor accepted on that listener and handed over.
/// </summary>
internal sealed class HandoffEndPoint(PublicListener listener) : EndPoint
{
    public PublicListener Listener { get; } = listener;

    public override string ToString() => $"handoff:{Listener}";
}

/// <summary>
/// --balancer handoff: the app's Kestrel serves the client connections the supervisor hands this worker
/// (<see cref="DescriptorPassing"/>). One socket to the supervisor carries them all; a thread waits on it
/// and gives each connection to its listener's queue, from which Kestrel's accept loop takes it.
/// The stream ends when the supervisor takes the worker out of rotation: every connection it handed over
/// before that is still served (with Connection: close, as the worker is draining), none is dropped.
/// </summary>
internal sealed class HandedConnections(ConnectionGate gate, KernelListening kernel, string workerKey, IOptions<SocketTransportOptions> options, ILoggerFactory loggers)
    : IConnectionListenerFactory, IConnectionListenerFactorySelector, IDisposable
{
    private readonly ConnectionGate _gate = gate;
    private readonly Dictionary<int, Channel<Socket>> _queues = kernel.Listeners.ToDictionary(listener => listener.Number, _ => Channel.CreateUnbounded<Socket>(new UnboundedChannelOptions { SingleWriter = true }));
    private readonly SocketConnectionContextFactory _contexts = new(FactoryOptions(options.Value), loggers.CreateLogger("Supervisor.WorkerHost.HandedConnections"));
    private readonly object _lock = new();
    private Socket? _supervisor;

    public bool CanBind(EndPoint endpoint) => endpoint is HandoffEndPoint;

    public ValueTask<IConnectionListener> BindAsync(EndPoint endpoint, CancellationToken cancellationToken = default)
    {
        var listener = ((HandoffEndPoint)endpoint).Listener;
        lock (_lock)
        {
            _supervisor ??= Connect(kernel.HandoffSocket!, workerKey);
        }
        _gate.AddSource();
        return ValueTask.FromResult<IConnectionListener>(new HandedListener(endpoint, _queues[listener.Number].Reader, this, listener.CleartextHttp2));
    }

    public void Dispose()
    {
        _supervisor?.Dispose();
        _contexts.Dispose();
    }

    // Connects and starts receiving; the supervisor hands nothing over until the worker is in rotation.
    private Socket Connect(string path, string workerKey)
    {
        var socket = new Socket(AddressFamily.Unix, SocketType.Seqpacket, ProtocolType.Unspecified);
        try
        {
            // Synchronous calls only: the descriptor stays blocking, as the receiving thread's recvmsg needs.
            socket.Connect(new UnixDomainSocketEndPoint(path));
            socket.Send(Encoding.UTF8.GetBytes(workerKey));
        }
        catch
        {
            socket.Dispose();
            throw;
        }
        new Thread(() => Receive(socket)) { IsBackground = true, Name = "handed connections" }.Start();
        return socket;
    }

    private void Receive(Socket supervisor)
    {
        try
        {
            while (DescriptorPassing.Receive(supervisor.SafeHandle, out var number, out var descriptor))
            {
                if (descriptor < 0)
                {
                    continue;
                }
                var connection = new Socket(new SafeSocketHandle(descriptor, ownsHandle: true));
                if (!_queues.TryGetValue(number, out var queue) || !queue.Writer.TryWrite(connection))
                {
                    connection.Dispose(); // A listener this worker does not serve, or one Kestrel has unbound.
                    ReportClosed();
                }
            }
        }
        catch (IOException)
        {
            // The supervisor is gone: the worker is orphaned and will be stopped.
        }
        catch (ObjectDisposedException)
        {
        }
        foreach (var queue in _queues.Values)
        {
            queue.Writer.TryComplete();
        }
    }

    // One byte per closed connection: the supervisor counts each worker's open connections.
    private void ReportClosed()
    {
        try
        {
            lock (_lock)
            {
                _supervisor?.Send([0]);
            }
        }
        catch (Exception exception) when (exception is SocketException or ObjectDisposedException)
        {
        }
    }

    private static SocketConnectionFactoryOptions FactoryOptions(SocketTransportOptions transport) => new()
    {
        IOQueueCount = transport.IOQueueCount,
        WaitForDataBeforeAllocatingBuffer = transport.WaitForDataBeforeAllocatingBuffer,
        MaxReadBufferSize = transport.MaxReadBufferSize,
        MaxWriteBufferSize = transport.MaxWriteBufferSize,
        UnsafePreferInlineScheduling = transport.UnsafePreferInlineScheduling,
    };

    private sealed class HandedListener(EndPoint endpoint, ChannelReader<Socket> handed, HandedConnections owner, bool http2Only) : IConnectionListener
    {
        private readonly CancellationTokenSource _unbound = new();
        private int _ended;

        public EndPoint EndPoint => endpoint;

        public async ValueTask<ConnectionContext?> AcceptAsync(CancellationToken cancellationToken = default)
        {
            using var untilUnbound = CancellationTokenSource.CreateLinkedTokenSource(cancellationToken, _unbound.Token);
            try
            {
                while (await handed.WaitToReadAsync(untilUnbound.Token))
                {
                    if (handed.TryRead(out var socket))
                    {
                        return Serve(socket);
                    }
                }
            }
            catch (OperationCanceledException) when (_unbound.IsCancellationRequested)
            {
            }
            End();
            return null;
        }

        public ValueTask UnbindAsync(CancellationToken cancellationToken = default)
        {
            _unbound.Cancel();
            // Connections handed over but not yet taken: Kestrel accepts no more, so they are closed.
            while (handed.TryRead(out var socket))
            {
                socket.Dispose();
                owner.ReportClosed();
            }
            End();
            return ValueTask.CompletedTask;
        }

        public ValueTask DisposeAsync()
        {
            _unbound.Dispose();
            return ValueTask.CompletedTask;
        }

        private ConnectionContext Serve(Socket socket)
        {
            if (socket.AddressFamily is AddressFamily.InterNetwork or AddressFamily.InterNetworkV6)
            {
                socket.NoDelay = true; // As Kestrel's socket transport sets on each connection it accepts.
            }
            var connection = owner._contexts.Create(socket);
            owner._gate.Track(connection, http2Only);
            connection.ConnectionClosed.Register(static state => ((HandedConnections)state!).ReportClosed(), owner);
            return connection;
        }

        // Once, whether the stream ended or Kestrel unbound first.
        private void End()
        {
            if (Interlocked.Exchange(ref _ended, 1) == 0)
            {
                owner._gate.EndSource();
            }
        }
    }
}
