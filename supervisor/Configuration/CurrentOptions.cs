namespace Supervisor.Configuration;

/// <summary>
/// The options in effect, for the parts that read them while running (the request path, the log). The
/// arbiter replaces them when a reload takes over; each reader sees either the old or the new, whole.
/// </summary>
internal sealed class CurrentOptions(SupervisorOptions initial)
{
    private volatile SupervisorOptions _value = initial;

    public SupervisorOptions Value
    {
        get => _value;
        set => _value = value;
    }
}
