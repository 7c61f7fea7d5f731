namespace Supervisor.WorkerHost;

/// <summary>The hook's own diagnostics: one line on stderr, which the supervisor captures per worker.</summary>
internal static class HookLog
{
    public static void Write(string message)
    {
        try
        {
            Console.Error.WriteLine($"[worker-host] {message}");
        }
        catch (IOException)
        {
            // stderr closed: nothing more we can do, and the app must not suffer for it.
        }
    }
}
