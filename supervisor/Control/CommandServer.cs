using System.Net.Sockets;
using System.Text;
using System.Threading.Channels;
using Supervisor.Arbitration;

namespace Supervisor.Control;

/// <summary>
/// The command socket (<c>command.sock</c>, mode 0600, in the private run directory) that
/// <c>supervisor status</c> and <c>supervisor reload</c> talk to. Each connection carries one request
/// line and gets one reply line. The arbiter's loop answers (it alone owns the pool); this server only
/// carries its answer, so every wait here ends: a request must arrive within <see cref="RequestWithin"/>,
/// and once the arbiter stops, anything still waiting is told so.
/// </summary>
internal sealed class CommandServer : IAsyncDisposable
{
    /// <summary>A client that connects and says nothing this long is dropped.</summary>
    public static readonly TimeSpan RequestWithin = TimeSpan.FromSeconds(5);

    private readonly Socket _listener;
    private readonly ChannelWriter<ArbiterEvent> _events;
    private readonly CancellationTokenSource _stopping = new();
    private readonly Task _acceptLoop;

    private CommandServer(Socket listener, ChannelWriter<ArbiterEvent> events)
    {
        _listener = listener;
        _events = events;
        _acceptLoop = AcceptLoopAsync();
    }

    public static CommandServer Start(string socketPath, ChannelWriter<ArbiterEvent> events)
    {
        return new CommandServer(PrivateUnixListener.Bind(socketPath, backlog: 16), events);
    }

    /// <summary>The arbiter has stopped: requests waiting for it are answered that the supervisor stops, and no new one is taken.</summary>
    public void Stop()
    {
        if (!_stopping.IsCancellationRequested)
        {
            _stopping.Cancel();
            _listener.Dispose();
        }
    }

    public async ValueTask DisposeAsync()
    {
        Stop();
        await _acceptLoop;
    }

    private Task AcceptLoopAsync() =>
        PrivateUnixListener.AcceptUntilStoppedAsync(_listener, connection => _ = Task.Run(() => ServeAsync(connection)), _stopping.Token);

    private async Task ServeAsync(Socket connection)
    {
        try
        {
            await using var stream = new NetworkStream(connection, ownsSocket: true);
            var reply = await ReadRequestAsync(stream) is { } line ? await AnswerAsync(line) : null;
            if (reply is not null)
            {
                using var written = new CancellationTokenSource(RequestWithin);
                await stream.WriteAsync(Encoding.UTF8.GetBytes(reply + "\n"), written.Token);
            }
        }
        catch (Exception exception) when (exception is IOException or SocketException or ObjectDisposedException or OperationCanceledException)
        {
            // The client went away, said nothing or would not read: its request was its own.
        }
    }

    // One line of at most MaxRequestBytes, within RequestWithin; null for anything else.
    private static async Task<string?> ReadRequestAsync(NetworkStream stream)
    {
        using var deadline = new CancellationTokenSource(RequestWithin);
        var buffer = new byte[CommandProtocol.MaxRequestBytes];
        var length = 0;
        while (length < buffer.Length)
        {
            var read = await stream.ReadAsync(buffer.AsMemory(length), deadline.Token);
            if (read == 0)
            {
                return null;
            }
            var end = Array.IndexOf(buffer, (byte)'\n', length, read);
            length += read;
            if (end >= 0)
            {
                return Encoding.UTF8.GetString(buffer, 0, end);
            }
        }
        return null;
    }

    private async Task<string> AnswerAsync(string line)
    {
        var request = CommandProtocol.Read<CommandRequest>(line);
        try
        {
            switch (request?.Command)
            {
                case CommandProtocol.Status:
                    var status = new TaskCompletionSource<PoolStatusReply>(TaskCreationOptions.RunContinuationsAsynchronously);
                    _events.TryWrite(new StatusRequested(status));
                    return CommandProtocol.Write(await AnsweredAsync(status.Task));
                case CommandProtocol.Reload:
                    var reload = new TaskCompletionSource<ReloadReply>(TaskCreationOptions.RunContinuationsAsynchronously);
                    _events.TryWrite(new ReloadRequested(reload, request.Wait));
                    return CommandProtocol.Write(await AnsweredAsync(reload.Task));
                case CommandProtocol.Takeover when request.Pid is { } pid:
                    var takeover = new TaskCompletionSource<TakeoverReply>(TaskCreationOptions.RunContinuationsAsynchronously);
                    _events.TryWrite(new TakeoverRequested(pid, takeover));
                    return CommandProtocol.Write(await AnsweredAsync(takeover.Task));
                default:
                    return CommandProtocol.Write(new ErrorReply($"unknown request '{Truncated(line)}': expected {{\"command\": \"status\"}} or {{\"command\": \"reload\", \"wait\": true}}"));
            }
        }
        catch (OperationCanceledException)
        {
            return request?.Command == CommandProtocol.Reload
                ? CommandProtocol.Write(new ReloadReply(ReloadReply.Stopping, 0, "the supervisor is stopping"))
                : CommandProtocol.Write(new ErrorReply("the supervisor is stopping"));
        }
    }

    // The arbiter's answer; one it gave in its last turn (a takeover ends the loop) still counts once it stops.
    private async Task<T> AnsweredAsync<T>(Task<T> answer)
    {
        try
        {
            return await answer.WaitAsync(_stopping.Token);
        }
        catch (OperationCanceledException) when (answer.IsCompletedSuccessfully)
        {
            return answer.Result;
        }
    }

    private static string Truncated(string line) => line.Length <= 80 ? line : line[..80] + "...";
}
