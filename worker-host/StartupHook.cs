using Supervisor.WorkerHost;

/// <summary>
/// Entry point the .NET runtime calls before the app's <c>Main</c> when this assembly is named in
/// <c>DOTNET_STARTUP_HOOKS</c>. The type must be called exactly <c>StartupHook</c> and live in no namespace.
/// </summary>
#pragma warning disable CA1050 // The runtime looks the hook up by this exact, namespace-less name.
internal static class StartupHook
#pragma warning restore CA1050
{
    public static void Initialize()
    {
        // An exception escaping here kills the app before Main: never let one out.
        try
        {
            WorkerAgent.StartFromEnvironment();
        }
        catch (Exception exception)
        {
            HookLog.Failure($"disabled: {exception.Message}");
        }
    }
}
