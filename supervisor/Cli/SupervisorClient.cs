using System.Net.Sockets;
using System.Text;
using System.Text.Json;
using Supervisor.Control;
using Supervisor.Workers;

namespace Supervisor.Cli;

/// <summary>
/// <c>supervisor status</c> and <c>supervisor reload</c>: find a running supervisor's command socket,
/// send one request, print the reply. Each failure is one line naming what to do, and an exit code:
/// the supervisor's own (2 a refused configuration, 3 workers that failed to boot), else 1.
/// </summary>
internal static class SupervisorClient
{
    /// <summary>The arbiter answers a status at its next turn (every 250 ms); this long silent is a stuck loop.</summary>
    private static readonly TimeSpan StatusWithin = TimeSpan.FromSeconds(10);

    public static async Task<int> StatusAsync(string? socketDirectory, string? pidfile, bool json)
    {
        try
        {
            var socket = Locate(socketDirectory, pidfile);
            var reply = await AskAsync(socket, new CommandRequest(CommandProtocol.Status), StatusWithin,
                $"no answer within {StatusWithin.TotalSeconds:0} s from the supervisor at '{socket}': its loop may be stuck (see /livez on --admin-bind, and its log)");
            var status = CommandProtocol.Read<PoolStatusReply>(reply) ?? throw Unexpected(reply);
            Console.Out.Write(json ? reply + "\n" : StatusReport.Write(status));
            return ExitCodes.Success;
        }
        catch (ClientFailure failure)
        {
            return Fail(failure);
        }
    }

    public static async Task<int> ReloadAsync(string? socketDirectory, string? pidfile, bool wait, TimeSpan timeout)
    {
        try
        {
            var socket = Locate(socketDirectory, pidfile);
            var reply = await AskAsync(socket, new CommandRequest(CommandProtocol.Reload, wait), wait ? timeout : StatusWithin,
                $"no result within {(wait ? timeout : StatusWithin).TotalSeconds:0} s; the reload may still complete (see the supervisor's log){(wait ? "; wait longer with --timeout" : "")}");
            var result = CommandProtocol.Read<ReloadReply>(reply) ?? throw Unexpected(reply);
            var exitCode = result.Result switch
            {
                ReloadReply.Requested or ReloadReply.Completed => ExitCodes.Success,
                ReloadReply.Refused => ExitCodes.UsageError,
                ReloadReply.Abandoned => ExitCodes.WorkerBootFailure,
                _ => ExitCodes.RuntimeFailure,
            };
            var line = $"supervisor: reload {result.Result}: {result.Message}";
            (exitCode == ExitCodes.Success ? Console.Out : Console.Error).WriteLine(line);
            return exitCode;
        }
        catch (ClientFailure failure)
        {
            return Fail(failure);
        }
    }

    /// <summary>A binary upgrade's new supervisor asks the old one to hand over: null when it did, else why not.</summary>
    public static async Task<string?> RequestTakeoverAsync(string socketPath, TimeSpan timeout)
    {
        try
        {
            var reply = await AskAsync(socketPath, new CommandRequest(CommandProtocol.Takeover, Pid: Environment.ProcessId), timeout,
                $"no answer within {timeout.TotalSeconds:0} s from the supervisor at '{socketPath}'");
            var answer = CommandProtocol.Read<TakeoverReply>(reply) ?? throw Unexpected(reply);
            return answer.Accepted ? null : answer.Message;
        }
        catch (ClientFailure failure)
        {
            return failure.Message;
        }
    }

    /// <summary>The command socket of the one supervisor the options name, or the only one this user runs.</summary>
    public static string Locate(string? socketDirectory, string? pidfile)
    {
        if (socketDirectory is not null)
        {
            // Its own, or during a binary upgrade the new supervisor's (in a directory inside it), newest first.
            var sockets = RunDirectory.CommandSocketsIn(Path.GetFullPath(socketDirectory));
            return sockets.FirstOrDefault(RunDirectory.Answers) ?? (sockets.Count > 0 ? sockets[0] : null)
                ?? throw new ClientFailure($"no command socket in --socket-dir '{socketDirectory}': give the --socket-dir the supervisor runs with");
        }
        var where = string.Join(", ", RunDirectory.FreshParents());
        if (pidfile is not null)
        {
            var pid = ReadPid(pidfile);
            return RunDirectory.FindRunning(pid) switch
            {
                [var (_, socket)] => socket,
                [] => throw new ClientFailure($"no command socket for supervisor pid {pid} (from '{pidfile}') in {where}: if it runs with --socket-dir, give that instead"),
                var many => throw new ClientFailure($"{many.Count} command sockets for pid {pid} in {where}; give --socket-dir"),
            };
        }
        return RunDirectory.FindRunning() switch
        {
            [var (_, socket)] => socket,
            [] => throw new ClientFailure($"no running supervisor of this user found in {where}: give the --pid or --socket-dir it runs with"),
            var many => throw new ClientFailure($"{many.Count} supervisors of this user are running (pids {string.Join(", ", many.Select(s => s.Pid).Order())}); choose one with --pid FILE or --socket-dir DIR"),
        };
    }

    private static int ReadPid(string pidfile)
    {
        string text;
        try
        {
            text = File.ReadAllText(pidfile).Trim();
        }
        catch (Exception exception) when (exception is FileNotFoundException or DirectoryNotFoundException)
        {
            throw new ClientFailure($"no pid file '{pidfile}': is a supervisor running with --pid {pidfile}?");
        }
        catch (Exception exception) when (exception is IOException or UnauthorizedAccessException)
        {
            throw new ClientFailure($"cannot read --pid '{pidfile}': {exception.Message.TrimEnd('.')}");
        }
        return int.TryParse(text, out var pid) && pid > 0
            ? pid
            : throw new ClientFailure($"--pid '{pidfile}' holds '{text}', not a process id: give the file the supervisor writes with --pid");
    }

    // One request line out, one reply line back, all of it within the timeout.
    private static async Task<string> AskAsync(string socketPath, CommandRequest request, TimeSpan timeout, string whenSilent)
    {
        using var deadline = new CancellationTokenSource(timeout);
        using var socket = new Socket(AddressFamily.Unix, SocketType.Stream, ProtocolType.Unspecified);
        try
        {
            await socket.ConnectAsync(new UnixDomainSocketEndPoint(socketPath), deadline.Token);
            await using var stream = new NetworkStream(socket, ownsSocket: false);
            await stream.WriteAsync(Encoding.UTF8.GetBytes(CommandProtocol.Write(request) + "\n"), deadline.Token);
            using var reader = new StreamReader(stream, Encoding.UTF8);
            var reply = await reader.ReadLineAsync(deadline.Token)
                ?? throw new ClientFailure($"the supervisor at '{socketPath}' closed the connection without an answer: see its log");
            return JsonDocumentError(reply) is { } error ? throw new ClientFailure($"the supervisor at '{socketPath}' says: {error}") : reply;
        }
        catch (SocketException exception) when (exception.SocketErrorCode is SocketError.ConnectionRefused or SocketError.AddressNotAvailable)
        {
            throw new ClientFailure($"the supervisor at '{socketPath}' is not answering ({exception.Message}): it is stopping, or it was killed");
        }
        catch (SocketException exception) when (exception.SocketErrorCode is SocketError.AccessDenied)
        {
            throw new ClientFailure($"no access to '{socketPath}': run this as the user the supervisor runs as");
        }
        catch (Exception exception) when (exception is IOException or SocketException)
        {
            throw new ClientFailure($"lost the connection to the supervisor at '{socketPath}' ({exception.Message}): see its log");
        }
        catch (OperationCanceledException)
        {
            throw new ClientFailure(whenSilent);
        }
    }

    private static string? JsonDocumentError(string reply)
    {
        try
        {
            using var document = JsonDocument.Parse(reply);
            return document.RootElement.ValueKind == JsonValueKind.Object && document.RootElement.TryGetProperty("error", out var error)
                ? error.GetString()
                : null;
        }
        catch (JsonException)
        {
            throw Unexpected(reply);
        }
    }

    private static ClientFailure Unexpected(string reply) =>
        new($"an answer this supervisor cannot read: '{(reply.Length > 80 ? reply[..80] + "..." : reply)}'; is the running supervisor another version?");

    private static int Fail(ClientFailure failure)
    {
        Console.Error.WriteLine($"supervisor: error: {failure.Message}");
        return ExitCodes.RuntimeFailure;
    }

    private sealed class ClientFailure(string message) : Exception(message);
}
