using System.Diagnostics;

namespace Supervisor.WorkerHost;

/// <summary>
/// Listens to the <c>Microsoft.Extensions.Hosting</c> diagnostic source, which every generic or minimal
/// host raises while it is built: the supported way to reach an app's host without touching its code.
/// </summary>
internal sealed class HostingEventObserver(WorkerAgent agent) : IObserver<DiagnosticListener>, IObserver<KeyValuePair<string, object?>>
{
    private const string HostingListenerName = "Microsoft.Extensions.Hosting";

    public void OnNext(DiagnosticListener listener)
    {
        if (listener.Name == HostingListenerName)
        {
            listener.Subscribe(this);
        }
    }

    public void OnNext(KeyValuePair<string, object?> hostingEvent)
    {
        try
        {
            switch (hostingEvent.Key)
            {
                case "HostBuilding":
                    agent.OnHostBuilding(hostingEvent.Value);
                    break;
                case "HostBuilt":
                    agent.OnHostBuilt(hostingEvent.Value);
                    break;
            }
        }
        catch (Exception exception)
        {
            // Never throw into the app's host build.
            HookLog.Failure($"{hostingEvent.Key}: {exception.Message}");
        }
    }

    public void OnCompleted()
    {
    }

    public void OnError(Exception error)
    {
    }
}
