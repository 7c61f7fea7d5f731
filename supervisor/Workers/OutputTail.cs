namespace Supervisor.Workers;

/// <summary>The last lines a worker wrote: quoted when it fails to boot, so the reason is in the error.</summary>
internal sealed class OutputTail(int capacity)
{
    private readonly Queue<string> _lines = new(capacity);
    private readonly Lock _lock = new();

    public void Add(string line)
    {
        lock (_lock)
        {
            if (_lines.Count == capacity)
            {
                _lines.Dequeue();
            }
            _lines.Enqueue(line);
        }
    }

    public IReadOnlyList<string> Lines
    {
        get
        {
            lock (_lock)
            {
                return [.. _lines];
            }
        }
    }
}
