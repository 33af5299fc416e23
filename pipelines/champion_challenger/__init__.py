"""champion_challenger: a challenger trained and compared with the champion, deployed only when better."""
